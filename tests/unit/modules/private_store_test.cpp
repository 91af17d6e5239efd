#include <catch2/catch.hpp>

#include "im_test_accounts.hpp"
#include "modules/private/store.hpp"
#include "tests/unit/storage/test_db.hpp"

using storage::test::TestDb;
using xmppd::privatexml::SetResult;
namespace store = xmppd::privatexml::store;

STORAGE_TEST_CASE("private store: set, get, replace", "[modules][private]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");

    CHECK_FALSE(store::get(*testling, "example.org", "alice", "storage:bookmarks"));
    CHECK(store::set(*testling, "example.org", "alice", "storage:bookmarks",
                     "<storage xmlns='storage:bookmarks'/>", 10) == SetResult::Stored);
    CHECK(store::set(*testling, "example.org", "alice", "storage:bookmarks",
                     "<storage xmlns='storage:bookmarks'><url/></storage>", 10) == SetResult::Stored);
    CHECK(store::get(*testling, "example.org", "alice", "storage:bookmarks") ==
          std::optional<std::string>("<storage xmlns='storage:bookmarks'><url/></storage>"));
    CHECK(store::count(*testling, "example.org", "alice") == 1);
}

STORAGE_TEST_CASE("private store: namespace quota keeps what is stored", "[modules][private]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");
    CHECK(store::set(*testling, "example.org", "alice", "a", "<x xmlns='a'/>", 2) == SetResult::Stored);
    CHECK(store::set(*testling, "example.org", "alice", "b", "<x xmlns='b'/>", 2) == SetResult::Stored);

    CHECK(store::set(*testling, "example.org", "alice", "c", "<x xmlns='c'/>", 2) == SetResult::TooMany);
    CHECK_FALSE(store::get(*testling, "example.org", "alice", "c"));
    // Replacing an existing namespace is fine at the limit.
    CHECK(store::set(*testling, "example.org", "alice", "b", "<y xmlns='b'/>", 2) == SetResult::Stored);
    CHECK(store::get(*testling, "example.org", "alice", "b") == std::optional<std::string>("<y xmlns='b'/>"));
}

STORAGE_TEST_CASE("private store: unknown account, hosts apart, removal", "[modules][private]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");
    xmppd::test::createAccount(*testling, "example.com", "alice");

    CHECK(store::set(*testling, "example.org", "bob", "a", "<x xmlns='a'/>", 10) == SetResult::NoSuchUser);
    store::set(*testling, "example.org", "alice", "a", "<x xmlns='a'>org</x>", 10);
    store::set(*testling, "example.com", "alice", "a", "<x xmlns='a'>com</x>", 10);
    CHECK(store::get(*testling, "example.com", "alice", "a") ==
          std::optional<std::string>("<x xmlns='a'>com</x>"));

    CHECK(store::removeUser(*testling, "example.org", "alice") == 1);
    CHECK_FALSE(store::get(*testling, "example.org", "alice", "a"));
    CHECK(store::get(*testling, "example.com", "alice", "a"));
}
