#include <catch2/catch.hpp>

#include "im_test_accounts.hpp"
#include "modules/blocking/store.hpp"
#include "tests/unit/storage/test_db.hpp"

using storage::test::TestDb;
using xmppd::blocking::ChangeResult;
namespace store = xmppd::blocking::store;
using Jids = std::vector<std::string>;

STORAGE_TEST_CASE("blocking store: block, list sorted, duplicates kept once", "[modules][blocking]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");

    CHECK(store::list(*testling, "example.org", "alice").empty());
    CHECK(store::block(*testling, "example.org", "alice", {"romeo@example.net", "example.com"}, 10) ==
          ChangeResult::Done);
    CHECK(store::block(*testling, "example.org", "alice", {"romeo@example.net", "a@b/c"}, 10) ==
          ChangeResult::Done);
    CHECK(store::list(*testling, "example.org", "alice") ==
          Jids{"a@b/c", "example.com", "romeo@example.net"});
}

STORAGE_TEST_CASE("blocking store: unblock some, unblock all", "[modules][blocking]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");
    store::block(*testling, "example.org", "alice", {"a@x", "b@x", "c@x"}, 10);

    CHECK(store::unblock(*testling, "example.org", "alice", {"b@x", "not-there@x"}) == ChangeResult::Done);
    CHECK(store::list(*testling, "example.org", "alice") == Jids{"a@x", "c@x"});
    CHECK(store::unblock(*testling, "example.org", "alice", {}) == ChangeResult::Done);
    CHECK(store::list(*testling, "example.org", "alice").empty());
}

STORAGE_TEST_CASE("blocking store: a block beyond max_items writes nothing", "[modules][blocking]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");
    store::block(*testling, "example.org", "alice", {"a@x", "b@x"}, 3);

    CHECK(store::block(*testling, "example.org", "alice", {"c@x", "d@x"}, 3) == ChangeResult::TooMany);
    CHECK(store::list(*testling, "example.org", "alice") == Jids{"a@x", "b@x"});
    // Re-blocking what is there does not count twice.
    CHECK(store::block(*testling, "example.org", "alice", {"a@x", "c@x"}, 3) == ChangeResult::Done);
    CHECK(store::list(*testling, "example.org", "alice") == Jids{"a@x", "b@x", "c@x"});
}

STORAGE_TEST_CASE("blocking store: unknown account, hosts apart, account removal", "[modules][blocking]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");
    xmppd::test::createAccount(*testling, "example.com", "alice");

    CHECK(store::block(*testling, "example.org", "nobody", {"a@x"}, 10) == ChangeResult::NoSuchUser);
    CHECK(store::unblock(*testling, "example.org", "nobody", {}) == ChangeResult::NoSuchUser);
    store::block(*testling, "example.org", "alice", {"a@x"}, 10);
    store::block(*testling, "example.com", "alice", {"b@x"}, 10);
    CHECK(store::list(*testling, "example.com", "alice") == Jids{"b@x"});

    CHECK(store::removeUser(*testling, "example.org", "alice") == 1);
    CHECK(store::list(*testling, "example.org", "alice").empty());
    CHECK(store::list(*testling, "example.com", "alice") == Jids{"b@x"});
}
