#include <catch2/catch.hpp>

#include "im_test_accounts.hpp"
#include "modules/last/store.hpp"
#include "tests/unit/storage/test_db.hpp"

using storage::test::TestDb;
using xmppd::last::LastSeen;
namespace store = xmppd::last::store;

STORAGE_TEST_CASE("last store: never seen, then the latest logout", "[modules][last]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");

    auto found = store::get(*testling, "example.org", "alice");
    CHECK(found.account);
    CHECK_FALSE(found.seen);

    CHECK(store::set(*testling, "example.org", "alice", LastSeen{1000, "gone fishing"}));
    CHECK(store::set(*testling, "example.org", "alice", LastSeen{2000, ""}));
    found = store::get(*testling, "example.org", "alice");
    REQUIRE(found.seen);
    CHECK(found.seen->logoutAt == 2000);
    CHECK(found.seen->status.empty());
}

STORAGE_TEST_CASE("last store: unknown account, hosts apart, removal", "[modules][last]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");
    xmppd::test::createAccount(*testling, "example.com", "alice");

    CHECK_FALSE(store::get(*testling, "example.org", "bob").account);
    CHECK_FALSE(store::set(*testling, "example.org", "bob", LastSeen{1, ""}));
    store::set(*testling, "example.org", "alice", LastSeen{10, "org"});
    store::set(*testling, "example.com", "alice", LastSeen{20, "com"});
    CHECK(store::get(*testling, "example.com", "alice").seen->status == "com");

    CHECK(store::removeUser(*testling, "example.org", "alice") == 1);
    CHECK_FALSE(store::get(*testling, "example.org", "alice").seen);
    CHECK(store::get(*testling, "example.com", "alice").seen->logoutAt == 20);
}
