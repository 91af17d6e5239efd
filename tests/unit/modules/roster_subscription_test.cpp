// RFC 6121 Appendix A: every row of the subscription state tables, each a
// test case on both storage backends (the state goes through a store
// round trip before and after the transition).
#include <catch2/catch.hpp>

#include <sstream>

#include "im_test_accounts.hpp"
#include "modules/roster/store.hpp"
#include "storage/migrations.hpp"
#include "tests/unit/storage/test_db.hpp"

using namespace xmppd::roster;

namespace {

SubState parseState(const std::string& text) {
    SubState s;
    std::stringstream in(text);
    std::string part;
    while (std::getline(in, part, '+')) {
        if (part == "To") {
            s.sub = Sub::To;
        } else if (part == "From") {
            s.sub = Sub::From;
        } else if (part == "Both") {
            s.sub = Sub::Both;
        } else if (part == "PendingOut") {
            s.pendingOut = true;
        } else if (part == "PendingIn") {
            s.pendingIn = true;
        } else if (part == "PreApproved") {
            s.preApproved = true;
        } else if (part != "None") {
            FAIL("bad state " << text);
        }
    }
    return s;
}

SubType parseType(const std::string& t) {
    SubType out{};
    REQUIRE(parseSubType(t, out));
    return out;
}

struct Row {
    const char* direction;  // "out": the user sends; "in": the contact sends
    const char* type;
    const char* before;
    const char* after;
    bool deliver;  // inbound rows: the stanza reaches the user
};

// Transcribed from RFC 6121 A.2 (outbound) and A.3 (inbound); with
// pre-approval (§3.4) for outbound 'subscribed' without a pending request.
const Row kRows[] = {
    {"out", "subscribe", "None", "None+PendingOut", false},
    {"out", "subscribe", "None+PendingOut", "None+PendingOut", false},
    {"out", "subscribe", "None+PendingIn", "None+PendingOut+PendingIn", false},
    {"out", "subscribe", "None+PendingOut+PendingIn", "None+PendingOut+PendingIn", false},
    {"out", "subscribe", "To", "To", false},
    {"out", "subscribe", "To+PendingIn", "To+PendingIn", false},
    {"out", "subscribe", "From", "From+PendingOut", false},
    {"out", "subscribe", "From+PendingOut", "From+PendingOut", false},
    {"out", "subscribe", "Both", "Both", false},
    {"out", "unsubscribe", "None", "None", false},
    {"out", "unsubscribe", "None+PendingOut", "None", false},
    {"out", "unsubscribe", "None+PendingIn", "None+PendingIn", false},
    {"out", "unsubscribe", "None+PendingOut+PendingIn", "None+PendingIn", false},
    {"out", "unsubscribe", "To", "None", false},
    {"out", "unsubscribe", "To+PendingIn", "None+PendingIn", false},
    {"out", "unsubscribe", "From", "From", false},
    {"out", "unsubscribe", "From+PendingOut", "From", false},
    {"out", "unsubscribe", "Both", "From", false},
    {"out", "subscribed", "None", "None+PreApproved", false},
    {"out", "subscribed", "None+PendingOut", "None+PendingOut+PreApproved", false},
    {"out", "subscribed", "None+PendingIn", "From", false},
    {"out", "subscribed", "None+PendingOut+PendingIn", "From+PendingOut", false},
    {"out", "subscribed", "To", "To+PreApproved", false},
    {"out", "subscribed", "To+PendingIn", "Both", false},
    {"out", "subscribed", "From", "From", false},
    {"out", "subscribed", "From+PendingOut", "From+PendingOut", false},
    {"out", "subscribed", "Both", "Both", false},
    {"out", "unsubscribed", "None", "None", false},
    {"out", "unsubscribed", "None+PendingOut", "None+PendingOut", false},
    {"out", "unsubscribed", "None+PendingIn", "None", false},
    {"out", "unsubscribed", "None+PendingOut+PendingIn", "None+PendingOut", false},
    {"out", "unsubscribed", "To", "To", false},
    {"out", "unsubscribed", "To+PendingIn", "To", false},
    {"out", "unsubscribed", "From", "None", false},
    {"out", "unsubscribed", "From+PendingOut", "None+PendingOut", false},
    {"out", "unsubscribed", "Both", "To", false},
    {"out", "unsubscribed", "None+PreApproved", "None", false},
    {"in", "subscribe", "None", "None+PendingIn", true},
    {"in", "subscribe", "None+PendingOut", "None+PendingOut+PendingIn", true},
    {"in", "subscribe", "None+PendingIn", "None+PendingIn", false},
    {"in", "subscribe", "None+PendingOut+PendingIn", "None+PendingOut+PendingIn", false},
    {"in", "subscribe", "To", "To+PendingIn", true},
    {"in", "subscribe", "To+PendingIn", "To+PendingIn", false},
    {"in", "subscribe", "From", "From", false},
    {"in", "subscribe", "From+PendingOut", "From+PendingOut", false},
    {"in", "subscribe", "Both", "Both", false},
    {"in", "subscribe", "None+PreApproved", "From", false},
    {"in", "subscribe", "To+PreApproved", "Both", false},
    {"in", "unsubscribe", "None", "None", false},
    {"in", "unsubscribe", "None+PendingOut", "None+PendingOut", false},
    {"in", "unsubscribe", "None+PendingIn", "None", true},
    {"in", "unsubscribe", "None+PendingOut+PendingIn", "None+PendingOut", true},
    {"in", "unsubscribe", "To", "To", false},
    {"in", "unsubscribe", "To+PendingIn", "To", true},
    {"in", "unsubscribe", "From", "None", true},
    {"in", "unsubscribe", "From+PendingOut", "None+PendingOut", true},
    {"in", "unsubscribe", "Both", "To", true},
    {"in", "subscribed", "None", "None", false},
    {"in", "subscribed", "None+PendingOut", "To", true},
    {"in", "subscribed", "None+PendingIn", "None+PendingIn", false},
    {"in", "subscribed", "None+PendingOut+PendingIn", "To+PendingIn", true},
    {"in", "subscribed", "To", "To", false},
    {"in", "subscribed", "To+PendingIn", "To+PendingIn", false},
    {"in", "subscribed", "From", "From", false},
    {"in", "subscribed", "From+PendingOut", "Both", true},
    {"in", "subscribed", "Both", "Both", false},
    {"in", "unsubscribed", "None", "None", false},
    {"in", "unsubscribed", "None+PendingOut", "None", true},
    {"in", "unsubscribed", "None+PendingIn", "None+PendingIn", false},
    {"in", "unsubscribed", "None+PendingOut+PendingIn", "None+PendingIn", true},
    {"in", "unsubscribed", "To", "None", true},
    {"in", "unsubscribed", "To+PendingIn", "None+PendingIn", true},
    {"in", "unsubscribed", "From", "From", false},
    {"in", "unsubscribed", "From+PendingOut", "From", true},
    {"in", "unsubscribed", "Both", "From", true},
};

}  // namespace

STORAGE_TEST_CASE("RFC 6121 Appendix A: every subscription transition", "[roster]") {
    storage::test::TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    auto accountsAndRoster = store::migrations();
    storage::migrate(*conn, accountsAndRoster);
    for (const Row& row : kRows) {
        DYNAMIC_SECTION(row.direction << " " << row.type << ": " << row.before << " -> " << row.after) {
            Item item;
            item.contact = "contact@example.com";
            item.state = parseState(row.before);
            store::put(*conn, "example.com", "user", item);
            auto loaded = store::get(*conn, "example.com", "user", "contact@example.com");
            REQUIRE(loaded);
            REQUIRE(loaded->state == item.state);
            SubType type = parseType(row.type);
            Outcome outcome = std::string(row.direction) == "out" ? outbound(loaded->state, type)
                                                                  : inbound(loaded->state, type);
            loaded->state = outcome.next;
            store::put(*conn, "example.com", "user", *loaded);
            auto after = store::get(*conn, "example.com", "user", "contact@example.com");
            REQUIRE(after);
            CHECK(after->state == parseState(row.after));
            CHECK(outcome.changed == !(parseState(row.before) == parseState(row.after)));
            if (std::string(row.direction) == "in") {
                CHECK(outcome.forward == row.deliver);
            }
        }
    }
}

TEST_CASE("an inbound subscribe that is already approved is answered for the user (RFC 6121 3.1.3)") {
    for (const char* state : {"From", "From+PendingOut", "Both", "None+PreApproved"}) {
        INFO(state);
        CHECK(inbound(parseState(state), SubType::Subscribe).autoReplySubscribed);
    }
    CHECK_FALSE(inbound(parseState("None"), SubType::Subscribe).autoReplySubscribed);
}

STORAGE_TEST_CASE("roster items, groups and versions round-trip", "[roster]") {
    storage::test::TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    storage::migrate(*conn, store::migrations());
    CHECK(store::version(*conn, "example.com", "user") == 0);
    Item item;
    item.contact = "a@example.com";
    item.name = "Ann";
    item.groups = {"Friends", "Work mates"};
    item.state = parseState("To+PendingIn");
    item.pendingStanza = "<presence type='subscribe'/>";
    store::put(*conn, "example.com", "user", item);
    CHECK(store::bumpVersion(*conn, "example.com", "user") == 1);
    CHECK(store::bumpVersion(*conn, "example.com", "user") == 2);
    auto all = store::load(*conn, "example.com", "user");
    REQUIRE(all.size() == 1);
    CHECK(all[0].groups == item.groups);
    CHECK(all[0].name == "Ann");
    CHECK(all[0].pendingStanza == item.pendingStanza);
    CHECK(store::load(*conn, "other.example", "user").empty());
    CHECK(store::countInRoster(*conn, "example.com", "user") == 1);
    store::removeUser(*conn, "example.com", "user");
    CHECK(store::load(*conn, "example.com", "user").empty());
    CHECK(store::version(*conn, "example.com", "user") == 0);
}

STORAGE_TEST_CASE("lockAccount tells existing accounts from missing ones (RFC 6121 8.5.1)", "[roster]") {
    storage::test::TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.com", "user");
    storage::Transaction tx(*testling);
    CHECK(store::lockAccount(*testling, "example.com", "user"));
    CHECK_FALSE(store::lockAccount(*testling, "example.com", "ghost"));
    CHECK_FALSE(store::lockAccount(*testling, "other.example", "user"));
    tx.commit();
}
