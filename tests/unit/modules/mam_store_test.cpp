// The archive's store against SQLite and PostgreSQL (the same cases on both,
// through the storage tests' fixture).
#include <catch2/catch.hpp>

#include "modules/mam/ids.hpp"
#include "modules/mam/store.hpp"
#include "storage/accounts.hpp"
#include "tests/unit/storage/test_db.hpp"

using storage::test::TestDb;
using namespace xmppd::mam;

namespace {

const std::string kHost = "example.org";

// The id of the n-th message of millisecond ms.
int64_t idAt(int64_t ms, int64_t n = 0) {
    return (ms << kSequenceBits) | n;
}

std::unique_ptr<storage::Connection> migrated(TestDb& db) {
    auto conn = db.connect();
    storage::migrate(*conn, storage::accounts::migrations());
    storage::migrate(*conn, store::migrations());
    for (const char* user : {"alice", "bob"}) {
        storage::Account a;
        a.host = kHost;
        a.username = user;
        a.salt = "c2FsdA==";
        a.iterations = 4096;
        REQUIRE(storage::accounts::create(*conn, a));
    }
    return conn;
}

NewMessage msg(const std::string& user, int64_t id, const std::string& with, const std::string& body,
               Direction direction = Direction::In, const std::string& resource = "") {
    return NewMessage{
        kHost, user, id, with, resource, direction, "<message><body>" + body + "</body></message>"};
}

Query queryOf(const std::string& user, int64_t max = 50) {
    Query q;
    q.host = kHost;
    q.user = user;
    q.max = max;
    return q;
}

std::vector<int64_t> idsOf(const Page& page) {
    std::vector<int64_t> out;
    for (const auto& m : page.items) {
        out.push_back(m.id);
    }
    return out;
}

// Ten messages of alice, one per second from t = 1000 s; odd ones with
// carol, even ones with dave (resource "phone" for 0, 4, 8).
std::vector<int64_t> fillTen(storage::Connection& c) {
    std::vector<NewMessage> batch;
    std::vector<int64_t> ids;
    for (int i = 0; i < 10; ++i) {
        int64_t id = idAt(1000000 + i * 1000, i);
        ids.push_back(id);
        std::string with = i % 2 ? "carol@example.net" : "dave@example.net";
        batch.push_back(
            msg("alice", id, with, "m" + std::to_string(i), Direction::In, i % 4 == 0 ? "phone" : ""));
    }
    store::append(c, batch, 0, nullptr);
    return ids;
}

std::vector<int64_t> slice(const std::vector<int64_t>& v, size_t from, size_t to) {
    return {v.begin() + static_cast<ptrdiff_t>(from), v.begin() + static_cast<ptrdiff_t>(to)};
}

}  // namespace

STORAGE_TEST_CASE("mam store: migration", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    CHECK(storage::migrate(*conn, store::migrations()) == 1);
    CHECK(storage::migrate(*conn, store::migrations()) == 0);
    CHECK(storage::schemaVersion(*conn, "mam") == 1);
}

STORAGE_TEST_CASE("mam store: a message comes back byte for byte with its metadata", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    std::string xml =
        "<message from='bob@example.org/x' type='chat'><body>caf\xc3\xa9 \xe2\x98\xba &lt;&amp;&gt; "
        "'\"</body><x xmlns='urn:example:unknown' a='1'/></message>";
    NewMessage m{kHost, "alice", idAt(1700000000123, 7), "bob@example.org", "x", Direction::Out, xml};
    auto results = store::append(*conn, std::span(&m, 1), 0, nullptr);
    REQUIRE(results == std::vector<AppendResult>{AppendResult::Stored});

    auto page = store::query(*conn, queryOf("alice"));
    REQUIRE(page);
    REQUIRE(page->items.size() == 1);
    const auto& got = page->items.front();
    CHECK(got.id == m.id);
    CHECK(got.timestamp == 1700000000123);
    CHECK(got.withJid == "bob@example.org");
    CHECK(got.withResource == "x");
    CHECK(got.direction == Direction::Out);
    CHECK(got.stanza == xml);
    CHECK(page->count == 1);
    CHECK(page->complete);
    CHECK(store::count(*conn, kHost, "alice") == 1);
    CHECK(store::count(*conn, kHost, "bob") == 0);
}

STORAGE_TEST_CASE("mam store: messages of unknown users are skipped", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    std::vector<NewMessage> batch{msg("alice", idAt(5), "x@y", "1"), msg("nobody", idAt(6), "x@y", "2"),
                                  msg("bob", idAt(7), "x@y", "3")};
    auto results = store::append(*conn, batch, 0, nullptr);
    CHECK(results ==
          std::vector<AppendResult>{AppendResult::Stored, AppendResult::NoSuchUser, AppendResult::Stored});
    CHECK(store::count(*conn, kHost, "nobody") == 0);
    CHECK(store::count(*conn, kHost, "alice") == 1);
    CHECK(store::count(*conn, kHost, "bob") == 1);
}

STORAGE_TEST_CASE("mam store: a taken id fails the whole batch", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    std::vector<NewMessage> first{msg("alice", idAt(5), "x@y", "1")};
    store::append(*conn, first, 0, nullptr);
    std::vector<NewMessage> batch{msg("alice", idAt(6), "x@y", "2"), msg("alice", idAt(5), "x@y", "again")};
    try {
        store::append(*conn, batch, 0, nullptr);
        FAIL("no error for a duplicate id");
    } catch (const storage::Error& e) {
        CHECK(storage::isUniqueViolation(e));
    }
    CHECK(store::count(*conn, kHost, "alice") == 1);
}

STORAGE_TEST_CASE("mam store: paging forward and backward", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    auto ids = fillTen(*conn);

    auto q = queryOf("alice", 4);
    auto page = store::query(*conn, q);
    REQUIRE(page);
    CHECK(idsOf(*page) == slice(ids, 0, 4));
    CHECK(page->count == 10);
    CHECK_FALSE(page->complete);

    q.rsmAfter = ids[3];
    page = store::query(*conn, q);
    CHECK(idsOf(*page) == slice(ids, 4, 8));
    CHECK_FALSE(page->complete);
    q.rsmAfter = ids[7];
    page = store::query(*conn, q);
    CHECK(idsOf(*page) == slice(ids, 8, 10));
    CHECK(page->complete);
    CHECK(page->count == 10);

    // XEP-0059 §2.5: an empty <before/> is the last page, still oldest first.
    q = queryOf("alice", 4);
    q.lastPage = true;
    page = store::query(*conn, q);
    CHECK(idsOf(*page) == slice(ids, 6, 10));
    CHECK_FALSE(page->complete);
    q.lastPage = false;
    q.rsmBefore = ids[6];
    page = store::query(*conn, q);
    CHECK(idsOf(*page) == slice(ids, 2, 6));
    CHECK_FALSE(page->complete);
    q.rsmBefore = ids[2];
    page = store::query(*conn, q);
    CHECK(idsOf(*page) == slice(ids, 0, 2));
    CHECK(page->complete);

    // Exactly the rest fits: complete.
    q = queryOf("alice", 10);
    page = store::query(*conn, q);
    CHECK(page->items.size() == 10);
    CHECK(page->complete);
}

STORAGE_TEST_CASE("mam store: max 0 gives the count only", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    fillTen(*conn);
    auto page = store::query(*conn, queryOf("alice", 0));
    REQUIRE(page);
    CHECK(page->items.empty());
    CHECK(page->count == 10);
    CHECK_FALSE(page->complete);
    page = store::query(*conn, queryOf("bob", 0));
    CHECK(page->count == 0);
    CHECK(page->complete);
}

STORAGE_TEST_CASE("mam store: filters", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    auto ids = fillTen(*conn);

    SECTION("with a bare JID: every resource") {
        auto q = queryOf("alice");
        q.withJid = "dave@example.net";
        auto page = store::query(*conn, q);
        CHECK(idsOf(*page) == std::vector<int64_t>{ids[0], ids[2], ids[4], ids[6], ids[8]});
        CHECK(page->count == 5);
    }
    SECTION("with a full JID: that resource only") {
        auto q = queryOf("alice");
        q.withJid = "dave@example.net";
        q.withResource = "phone";
        auto page = store::query(*conn, q);
        CHECK(idsOf(*page) == std::vector<int64_t>{ids[0], ids[4], ids[8]});
    }
    SECTION("start and end are inclusive") {
        auto q = queryOf("alice");
        q.startMs = 1000000 + 2000;
        q.endMs = 1000000 + 5000;
        auto page = store::query(*conn, q);
        CHECK(idsOf(*page) == slice(ids, 2, 6));
        CHECK(page->count == 4);
        q.startMs = 1000000 + 2001;
        q.endMs = 1000000 + 4999;
        CHECK(idsOf(*store::query(*conn, q)) == slice(ids, 3, 5));
    }
    SECTION("after-id and before-id are exclusive") {
        auto q = queryOf("alice");
        q.afterId = ids[1];
        q.beforeId = ids[5];
        auto page = store::query(*conn, q);
        CHECK(idsOf(*page) == slice(ids, 2, 5));
        CHECK(page->count == 3);
        // Combined with a backward page inside that range.
        q.max = 2;
        q.lastPage = true;
        page = store::query(*conn, q);
        CHECK(idsOf(*page) == slice(ids, 3, 5));
        CHECK_FALSE(page->complete);
    }
    SECTION("ids, with other filters and paging on top") {
        auto q = queryOf("alice");
        q.ids = {ids[7], ids[1], ids[4], ids[1]};
        auto page = store::query(*conn, q);
        CHECK(idsOf(*page) == std::vector<int64_t>{ids[1], ids[4], ids[7]});
        CHECK(page->count == 3);
        CHECK(page->complete);
        q.withJid = "carol@example.net";
        CHECK(idsOf(*store::query(*conn, q)) == std::vector<int64_t>{ids[1], ids[7]});
        q.withJid.clear();
        q.max = 1;
        q.rsmAfter = ids[1];
        page = store::query(*conn, q);
        CHECK(idsOf(*page) == std::vector<int64_t>{ids[4]});
        CHECK_FALSE(page->complete);
        q.rsmAfter.reset();
        q.lastPage = true;
        page = store::query(*conn, q);
        CHECK(idsOf(*page) == std::vector<int64_t>{ids[7]});
    }
    SECTION("another user's archive is not visible") {
        auto q = queryOf("bob");
        CHECK(store::query(*conn, q)->items.empty());
        q.ids = {ids[0]};
        CHECK_FALSE(store::query(*conn, q));
    }
}

STORAGE_TEST_CASE("mam store: ids that are not in the archive", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    auto ids = fillTen(*conn);
    int64_t missing = ids[3] + 1;
    for (int field = 0; field < 5; ++field) {
        auto q = queryOf("alice");
        switch (field) {
            case 0:
                q.afterId = missing;
                break;
            case 1:
                q.beforeId = missing;
                break;
            case 2:
                q.rsmAfter = missing;
                break;
            case 3:
                q.rsmBefore = missing;
                break;
            default:
                q.ids = {ids[0], missing};
        }
        INFO("field " << field);
        CHECK_FALSE(store::query(*conn, q));
    }
    CHECK(store::contains(*conn, kHost, "alice", ids[3]));
    CHECK_FALSE(store::contains(*conn, kHost, "alice", missing));
}

STORAGE_TEST_CASE("mam store: the per-user limit drops the oldest", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    ArchiveCounts counts;
    bool cached = GENERATE(false, true);
    INFO("with count cache: " << cached);
    ArchiveCounts* cache = cached ? &counts : nullptr;
    std::vector<int64_t> ids;
    for (int i = 0; i < 7; ++i) {
        std::vector<NewMessage> batch;
        for (int j = 0; j < 2; ++j) {
            int64_t id = idAt(1000 + i * 10 + j);
            ids.push_back(id);
            batch.push_back(msg("alice", id, "x@y", "m"));
        }
        batch.push_back(msg("bob", idAt(1000 + i * 10 + 5), "x@y", "b"));
        store::append(*conn, batch, 5, cache);
        CHECK(store::count(*conn, kHost, "alice") == std::min<int64_t>(5, 2 * (i + 1)));
    }
    auto page = store::query(*conn, queryOf("alice"));
    CHECK(idsOf(*page) == slice(ids, ids.size() - 5, ids.size()));
    CHECK(store::count(*conn, kHost, "bob") == 5);
    if (cached) {
        CHECK(counts.find("alice@" + kHost) == 5);
        // A stale count (another server wrote meanwhile) is corrected.
        counts.set("alice@" + kHost, 1);
        std::vector<NewMessage> one{msg("alice", idAt(5000), "x@y", "m")};
        store::append(*conn, one, 5, cache);
        CHECK(counts.find("alice@" + kHost) == 2);
        CHECK(store::count(*conn, kHost, "alice") == 6);
        std::vector<NewMessage> more{
            msg("alice", idAt(5001), "x@y", "m"), msg("alice", idAt(5002), "x@y", "m"),
            msg("alice", idAt(5003), "x@y", "m"), msg("alice", idAt(5004), "x@y", "m")};
        store::append(*conn, more, 5, cache);
        CHECK(store::count(*conn, kHost, "alice") == 5);
        CHECK(counts.find("alice@" + kHost) == 5);
    }
}

STORAGE_TEST_CASE("mam store: retention and account removal", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    fillTen(*conn);
    std::vector<NewMessage> bobs{msg("bob", idAt(1000000), "x@y", "old"),
                                 msg("bob", idAt(9000000), "x@y", "new")};
    store::append(*conn, bobs, 0, nullptr);
    store::savePrefs(*conn, kHost, "alice", Prefs{DefaultMode::Never, {"a@b"}, {}});

    CHECK(store::removeOlderThan(*conn, 1000000 + 3000) == 4);  // alice's 0..2 and bob's old
    auto page = store::query(*conn, queryOf("alice"));
    CHECK(page->count == 7);
    CHECK(page->items.front().timestamp == 1000000 + 3000);
    CHECK(store::count(*conn, kHost, "bob") == 1);

    CHECK(store::removeUser(*conn, kHost, "alice") == 7);
    CHECK(store::count(*conn, kHost, "alice") == 0);
    CHECK_FALSE(store::loadPrefs(*conn, kHost, "alice"));
    CHECK(store::count(*conn, kHost, "bob") == 1);
}

STORAGE_TEST_CASE("mam store: bounds for the metadata", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    CHECK_FALSE(store::bounds(*conn, kHost, "alice"));
    auto ids = fillTen(*conn);
    auto b = store::bounds(*conn, kHost, "alice");
    REQUIRE(b);
    CHECK(b->first.id == ids.front());
    CHECK(b->second.id == ids.back());
    CHECK(b->second.timestamp == 1000000 + 9000);
}

STORAGE_TEST_CASE("mam store: preferences", "[mam]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    CHECK_FALSE(store::loadPrefs(*conn, kHost, "alice"));
    CHECK(store::loadAllPrefs(*conn).empty());

    Prefs alice{DefaultMode::Roster, {"B@x", "a@x", "z@x/r"}, {"n@x"}};
    store::savePrefs(*conn, kHost, "alice", alice);
    Prefs bob{DefaultMode::Never, {}, {}};
    store::savePrefs(*conn, kHost, "bob", bob);
    // Overwrites: the old lists go.
    alice = Prefs{DefaultMode::Always, {"b@x", "c@x"}, {"d@x", "b@x"}};
    store::savePrefs(*conn, kHost, "alice", alice);

    auto loaded = store::loadPrefs(*conn, kHost, "alice");
    REQUIRE(loaded);
    CHECK(*loaded == Prefs{DefaultMode::Always, {"b@x", "c@x"}, {"b@x", "d@x"}});
    auto all = store::loadAllPrefs(*conn);
    REQUIRE(all.size() == 2);
    CHECK(all["alice@example.org"] == *loaded);
    CHECK(all["bob@example.org"] == bob);
}
