#include <catch2/catch.hpp>

#include "storage/accounts.hpp"
#include "test_db.hpp"

using storage::Account;
using storage::Connection;
using storage::test::TestDb;
namespace accounts = storage::accounts;

namespace {

Account makeAccount(std::string host, std::string username, std::string tag = "1") {
    Account account;
    account.host = std::move(host);
    account.username = std::move(username);
    account.salt = "c2FsdA==" + tag;
    account.iterations = 4096;
    account.storedKeySha1 = "sk1/" + tag + "+==";
    account.serverKeySha1 = "sv1/" + tag + "+==";
    account.storedKeySha256 = "sk256/" + tag + "+==";
    account.serverKeySha256 = "sv256/" + tag + "+==";
    account.createdAt = 1700000000;
    return account;
}

std::unique_ptr<Connection> migrated(TestDb& db) {
    auto conn = db.connect();
    storage::migrate(*conn, accounts::migrations());
    return conn;
}

}  // namespace

STORAGE_TEST_CASE("accounts: migration", "[storage][accounts]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    REQUIRE(accounts::migrations().size() == 2);
    CHECK(accounts::migrations()[0].module == "accounts");
    CHECK(storage::migrate(*conn, accounts::migrations()) == 2);
    CHECK(storage::migrate(*conn, accounts::migrations()) == 0);
    CHECK(storage::schemaVersion(*conn, "accounts") == 2);
}

STORAGE_TEST_CASE("accounts: create, find, duplicate", "[storage][accounts]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    const Account alice = makeAccount("example.org", "alice");

    CHECK_FALSE(accounts::find(*conn, "example.org", "alice"));
    CHECK(accounts::create(*conn, alice));
    std::optional<Account> found = accounts::find(*conn, "example.org", "alice");
    REQUIRE(found);
    CHECK(*found == alice);

    // A second create changes nothing, and is not an exception: inside a
    // transaction that would abort it on PostgreSQL.
    CHECK_FALSE(accounts::create(*conn, makeAccount("example.org", "alice", "other")));
    CHECK(accounts::find(*conn, "example.org", "alice") == alice);

    // Lookups are exact.
    CHECK_FALSE(accounts::find(*conn, "example.org", "Alice"));
    CHECK_FALSE(accounts::find(*conn, "example.org", "alic"));
}

STORAGE_TEST_CASE("accounts: create inside a transaction", "[storage][accounts]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    storage::Transaction tx(*conn);
    CHECK(accounts::create(*conn, makeAccount("example.org", "alice")));
    CHECK_FALSE(accounts::create(*conn, makeAccount("example.org", "alice")));
    CHECK(accounts::create(*conn, makeAccount("example.org", "bob")));
    tx.commit();
    CHECK(accounts::count(*conn, "example.org") == 2);
}

STORAGE_TEST_CASE("accounts: update credentials and remove", "[storage][accounts]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    REQUIRE(accounts::create(*conn, makeAccount("example.org", "alice")));

    Account changed = makeAccount("example.org", "alice", "2");
    changed.iterations = 10000;
    changed.createdAt = 42;  // Not an account's to change.
    CHECK(accounts::updateCredentials(*conn, changed));
    std::optional<Account> found = accounts::find(*conn, "example.org", "alice");
    REQUIRE(found);
    CHECK(found->salt == changed.salt);
    CHECK(found->iterations == 10000);
    CHECK(found->storedKeySha1 == changed.storedKeySha1);
    CHECK(found->serverKeySha1 == changed.serverKeySha1);
    CHECK(found->storedKeySha256 == changed.storedKeySha256);
    CHECK(found->serverKeySha256 == changed.serverKeySha256);
    CHECK(found->createdAt == 1700000000);

    CHECK_FALSE(accounts::updateCredentials(*conn, makeAccount("example.org", "nobody")));
    CHECK_FALSE(accounts::find(*conn, "example.org", "nobody"));

    CHECK(accounts::remove(*conn, "example.org", "alice"));
    CHECK_FALSE(accounts::find(*conn, "example.org", "alice"));
    CHECK_FALSE(accounts::remove(*conn, "example.org", "alice"));
    // The name can be registered again.
    CHECK(accounts::create(*conn, makeAccount("example.org", "alice", "3")));
}

STORAGE_TEST_CASE("accounts: list and count, per host", "[storage][accounts]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    CHECK(accounts::list(*conn, "example.org").empty());
    CHECK(accounts::count(*conn, "example.org") == 0);

    // Inserted out of order; "Zed" and "\xc3\xa9mile" test byte order, which
    // a locale-aware collation would get "wrong".
    for (const char* name : {"carol", "alice", "Zed", "\xc3\xa9mile", "bob"}) {
        REQUIRE(accounts::create(*conn, makeAccount("example.org", name)));
    }
    REQUIRE(accounts::create(*conn, makeAccount("example.net", "alice")));
    REQUIRE(accounts::create(*conn, makeAccount("example.net", "dave")));

    CHECK(accounts::list(*conn, "example.org") ==
          std::vector<std::string>{"Zed", "alice", "bob", "carol", "\xc3\xa9mile"});
    CHECK(accounts::count(*conn, "example.org") == 5);
    CHECK(accounts::list(*conn, "example.net") == std::vector<std::string>{"alice", "dave"});
    CHECK(accounts::count(*conn, "example.net") == 2);
    CHECK(accounts::count(*conn, "example.com") == 0);
}

STORAGE_TEST_CASE("accounts: hosts are isolated", "[storage][accounts]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    const Account org = makeAccount("example.org", "alice", "org");
    const Account net = makeAccount("example.net", "alice", "net");
    CHECK(accounts::create(*conn, org));
    CHECK(accounts::create(*conn, net));
    CHECK(accounts::find(*conn, "example.org", "alice") == org);
    CHECK(accounts::find(*conn, "example.net", "alice") == net);

    Account changed = makeAccount("example.org", "alice", "changed");
    CHECK(accounts::updateCredentials(*conn, changed));
    CHECK(accounts::find(*conn, "example.net", "alice") == net);

    CHECK(accounts::remove(*conn, "example.org", "alice"));
    CHECK(accounts::find(*conn, "example.net", "alice") == net);
    CHECK(accounts::count(*conn, "example.org") == 0);
    CHECK(accounts::count(*conn, "example.net") == 1);
}

STORAGE_TEST_CASE("accounts: keys are added, replaced, listed, removed, and go with the account",
                  "[storage][accounts]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = migrated(db);
    REQUIRE(accounts::create(*conn, makeAccount("example.org", "4915112345678")));
    REQUIRE(accounts::create(*conn, makeAccount("example.org", "bob")));
    auto key = [](std::string id, int64_t created) {
        storage::AccountKey k;
        k.id = std::move(id);
        k.name = "Pixel " + k.id;
        k.storedKeySha1 = "a" + k.id;
        k.serverKeySha1 = "b" + k.id;
        k.storedKeySha256 = "c" + k.id;
        k.serverKeySha256 = "d" + k.id;
        k.createdAt = created;
        return k;
    };
    accounts::putKey(*conn, "example.org", "4915112345678", key("d2", 200));
    accounts::putKey(*conn, "example.org", "4915112345678", key("d1", 100));
    accounts::putKey(*conn, "example.org", "bob", key("b1", 100));
    auto testling = accounts::keys(*conn, "example.org", "4915112345678");
    REQUIRE(testling.size() == 2);
    CHECK(testling[0] == key("d1", 100));  // oldest first
    CHECK(testling[1] == key("d2", 200));

    auto replaced = key("d1", 300);
    replaced.storedKeySha256 = "new";
    accounts::putKey(*conn, "example.org", "4915112345678", replaced);
    accounts::touchKey(*conn, "example.org", "4915112345678", "d1", 777);
    testling = accounts::keys(*conn, "example.org", "4915112345678");
    REQUIRE(testling.size() == 2);
    CHECK(testling[1].storedKeySha256 == "new");
    CHECK(testling[1].lastUsed == 777);

    CHECK(accounts::removeKeys(*conn, "example.org", "4915112345678", "d2") == 1);
    CHECK(accounts::removeKeys(*conn, "example.org", "4915112345678", "nope") == 0);
    CHECK(accounts::keys(*conn, "example.org", "4915112345678").size() == 1);
    CHECK(accounts::remove(*conn, "example.org", "4915112345678"));
    CHECK(accounts::keys(*conn, "example.org", "4915112345678").empty());
    CHECK(accounts::keys(*conn, "example.org", "bob").size() == 1);  // others keep theirs
}
