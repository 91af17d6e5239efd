// XEP-0198 §4 counters around the 2^32 wrap, as the c2s session uses them.
#include <catch2/catch.hpp>

#include "server/c2s/sm_counters.hpp"

using namespace xmppd;

namespace {
constexpr uint64_t kWrap = uint64_t{1} << 32;
}

TEST_CASE("sm: h wraps to 0 after 2^32 - 1 handled stanzas", "[sm]") {
    std::set<uint64_t> unhandled;
    CHECK(sm::handledCount(kWrap - 1, unhandled) == UINT32_MAX);
    CHECK(sm::handledCount(kWrap, unhandled) == 0);
    CHECK(sm::handledCount(kWrap + 7, unhandled) == 7);
}

TEST_CASE("sm: h across the wrap stops at the first stanza still pending", "[sm]") {
    // Received stanzas 2^32 - 2 .. 2^32 + 2 (1-based); two of them wait for
    // a durable write, the first of those just after the wrap.
    std::set<uint64_t> unhandled{kWrap + 1, kWrap + 2};
    auto testling = sm::handledCount(kWrap + 2, unhandled);
    CHECK(testling == 0);  // 2^32 handled: h wrapped to 0
    unhandled.erase(kWrap + 1);
    CHECK(sm::handledCount(kWrap + 2, unhandled) == 1);
    unhandled.erase(kWrap + 2);
    CHECK(sm::handledCount(kWrap + 2, unhandled) == 2);
    // one still pending before the wrap
    CHECK(sm::handledCount(kWrap + 2, {kWrap - 1}) == UINT32_MAX - 1);
}

TEST_CASE("sm: a client's h that wrapped past 0 acknowledges the stanzas across the wrap", "[sm]") {
    uint32_t lastAcked = UINT32_MAX - 2;  // three stanzas before the wrap are queued, then five after
    auto testling = sm::newlyAcked(4, lastAcked, 8);
    REQUIRE(testling);
    CHECK(*testling == 7);
    CHECK(sm::newlyAcked(UINT32_MAX, lastAcked, 8) == 2u);
    CHECK(sm::newlyAcked(lastAcked, lastAcked, 8) == 0u);
    CHECK(sm::newlyAcked(5, lastAcked, 8) == 8u);
}

TEST_CASE("sm: an h beyond what was sent is too high, also across the wrap", "[sm]") {
    uint32_t lastAcked = UINT32_MAX - 2;
    CHECK_FALSE(sm::newlyAcked(6, lastAcked, 8));               // nine, only eight queued
    CHECK_FALSE(sm::newlyAcked(UINT32_MAX - 3, lastAcked, 8));  // behind the last h: 2^32 - 1 "new"
    CHECK_FALSE(sm::newlyAcked(1, 0, 0));
}

TEST_CASE("sm: h is a decimal unsigned 32-bit integer", "[sm]") {
    CHECK(sm::parseH("0") == 0u);
    CHECK(sm::parseH("4294967295") == UINT32_MAX);
    CHECK_FALSE(sm::parseH("4294967296"));
    CHECK_FALSE(sm::parseH("99999999999"));
    CHECK_FALSE(sm::parseH(""));
    CHECK_FALSE(sm::parseH("-1"));
    CHECK_FALSE(sm::parseH("1e3"));
}
