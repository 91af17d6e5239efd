#include <catch2/catch.hpp>

#include "modules/blocking/blocklist_cache.hpp"

using xmpp::Jid;
using xmppd::blocking::BlocklistCache;
using xmppd::blocking::Items;
using xmppd::blocking::matches;
using xmppd::blocking::Snapshot;

namespace {

Jid jid(const char* s) {
    auto j = Jid::parse(s);
    REQUIRE(j);
    return *j;
}

Snapshot list(std::initializer_list<const char*> jids) {
    auto items = std::make_shared<Items>();
    for (auto j : jids) {
        items->insert(j);
    }
    return items;
}

}  // namespace

TEST_CASE("blocking: XEP-0016 §2.1 matching of the four item forms", "[modules][blocking]") {
    SECTION("user@domain/resource matches only that resource") {
        Items items{"romeo@example.net/orchard"};
        CHECK(matches(items, jid("romeo@example.net/orchard")));
        CHECK_FALSE(matches(items, jid("romeo@example.net/balcony")));
        CHECK_FALSE(matches(items, jid("romeo@example.net")));
        CHECK_FALSE(matches(items, jid("example.net")));
    }
    SECTION("user@domain matches it and every resource") {
        Items items{"romeo@example.net"};
        CHECK(matches(items, jid("romeo@example.net")));
        CHECK(matches(items, jid("romeo@example.net/orchard")));
        CHECK_FALSE(matches(items, jid("mercutio@example.net")));
        CHECK_FALSE(matches(items, jid("example.net")));
    }
    SECTION("domain/resource matches only that JID") {
        Items items{"example.net/bot"};
        CHECK(matches(items, jid("example.net/bot")));
        CHECK_FALSE(matches(items, jid("romeo@example.net/bot")));
        CHECK_FALSE(matches(items, jid("example.net")));
    }
    SECTION("domain matches the domain and everything at it") {
        Items items{"example.net"};
        CHECK(matches(items, jid("example.net")));
        CHECK(matches(items, jid("example.net/bot")));
        CHECK(matches(items, jid("romeo@example.net")));
        CHECK(matches(items, jid("romeo@example.net/orchard")));
        CHECK_FALSE(matches(items, jid("romeo@sub.example.net")));
    }
    SECTION("JIDs compare normalised") {
        Items items{jid("Romeo@Example.NET").str()};
        CHECK(matches(items, jid("romeo@example.net/x")));
    }
}

TEST_CASE("blocking cache: a bound user's list is loaded once and found", "[modules][blocking]") {
    BlocklistCache testling(10);
    auto generation = testling.sessionBound("alice@example.org");
    REQUIRE(generation);
    CHECK_FALSE(testling.find("alice@example.org"));
    CHECK_FALSE(testling.sessionBound("alice@example.org"));  // second session: already loading
    testling.loaded("alice@example.org", *generation, list({"x@y"}));
    REQUIRE(testling.find("alice@example.org"));
    CHECK(testling.find("alice@example.org")->count("x@y") == 1);
}

TEST_CASE("blocking cache: waiters run when the load completes, null when it fails", "[modules][blocking]") {
    BlocklistCache testling(10);
    std::vector<Snapshot> got;
    auto wait = testling.whenLoaded("bob@example.org", [&](Snapshot s) { got.push_back(s); });
    REQUIRE(wait.load);
    CHECK_FALSE(wait.ready);
    auto second = testling.whenLoaded("bob@example.org", [&](Snapshot s) { got.push_back(s); });
    CHECK_FALSE(second.load);  // one load for all waiters
    testling.loadFailed("bob@example.org", *wait.load);
    REQUIRE(got.size() == 2);
    CHECK_FALSE(got[0]);
    CHECK_FALSE(testling.find("bob@example.org"));

    // The next need starts a new load.
    auto retry = testling.whenLoaded("bob@example.org", [&](Snapshot s) { got.push_back(s); });
    REQUIRE(retry.load);
    testling.loaded("bob@example.org", *retry.load, list({}));
    REQUIRE(got.size() == 3);
    CHECK(got[2]);
    auto ready = testling.whenLoaded("bob@example.org", [&](Snapshot) { FAIL("not kept when ready"); });
    CHECK(ready.ready);
}

TEST_CASE("blocking cache: a replacement outdates a load under way", "[modules][blocking]") {
    BlocklistCache testling(10);
    auto generation = testling.sessionBound("alice@example.org");
    REQUIRE(generation);
    testling.replace("alice@example.org", list({"new@x"}));
    testling.loaded("alice@example.org", *generation, list({"old@x"}));
    CHECK(testling.find("alice@example.org")->count("new@x") == 1);
}

TEST_CASE("blocking cache: with no offline capacity the list goes at the last logout",
          "[modules][blocking]") {
    BlocklistCache testling(0);
    auto generation = testling.sessionBound("alice@example.org");
    testling.sessionBound("alice@example.org");
    testling.loaded("alice@example.org", *generation, list({"x@y"}));
    testling.addInterested("alice@example.org", "phone");
    testling.addInterested("alice@example.org", "laptop");

    testling.sessionClosed("alice@example.org", "phone");
    CHECK(testling.find("alice@example.org"));
    CHECK(testling.interested("alice@example.org") == std::vector<std::string>{"laptop"});
    testling.sessionClosed("alice@example.org", "laptop");
    CHECK_FALSE(testling.find("alice@example.org"));
    CHECK(testling.size() == 0);
}

TEST_CASE("blocking cache: offline lists are bounded, online ones are not", "[modules][blocking]") {
    BlocklistCache testling(16);  // one per shard
    std::vector<std::string> users;
    for (int i = 0; i < 200; ++i) {
        users.push_back("u" + std::to_string(i) + "@example.org");
        auto wait = testling.whenLoaded(users.back(), [](Snapshot) {});
        testling.loaded(users.back(), *wait.load, list({}));
    }
    CHECK(testling.size() <= 16);
    for (int i = 0; i < 50; ++i) {
        auto g = testling.sessionBound("on" + std::to_string(i) + "@example.org");
        testling.loaded("on" + std::to_string(i) + "@example.org", *g, list({}));
    }
    for (int i = 0; i < 50; ++i) {
        CHECK(testling.find("on" + std::to_string(i) + "@example.org"));
    }
}

TEST_CASE("blocking cache: a user's changes run one at a time, in order", "[modules][blocking]") {
    BlocklistCache testling(0);
    auto generation = testling.sessionBound("alice@example.org");
    testling.loaded("alice@example.org", *generation, list({}));
    std::vector<int> ran;
    testling.startChange("alice@example.org", [&] { ran.push_back(1); });
    testling.startChange("alice@example.org", [&] { ran.push_back(2); });
    testling.startChange("alice@example.org", [&] { ran.push_back(3); });
    CHECK(ran == std::vector<int>{1});
    testling.finishChange("alice@example.org");
    CHECK(ran == std::vector<int>{1, 2});
    // The user logging out does not lose a queued change.
    testling.sessionClosed("alice@example.org", "r");
    testling.finishChange("alice@example.org");
    CHECK(ran == std::vector<int>{1, 2, 3});
    testling.finishChange("alice@example.org");
    CHECK(testling.size() == 0);
}

TEST_CASE("blocking cache: forgetting a user answers its waiters with null", "[modules][blocking]") {
    BlocklistCache testling(10);
    int nulls = 0;
    testling.whenLoaded("gone@example.org", [&](Snapshot s) { nulls += s ? 0 : 1; });
    testling.forget("gone@example.org");
    CHECK(nulls == 1);
    CHECK(testling.size() == 0);
}
