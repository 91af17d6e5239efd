// External components (XEP-0114): the handshake and the router's component table.
#include <catch2/catch.hpp>

#include "server/component/handshake.hpp"
#include "server/router.hpp"
#include "server/worker.hpp"
#include "tests/unit/server/fake_session.hpp"
#include "xmpp/ns.hpp"

using namespace xmppd;
using xmpp::Element;
using xmpp::Jid;

namespace {

using FakeSession = test::FakeSession<>;

Element stanza(const char* name, const char* from, const char* to, const char* type = "") {
    Element s(name, std::string(xmpp::ns::kClient));
    s.setAttr("from", from).setAttr("to", to).setAttr("id", "s1");
    if (*type) {
        s.setAttr("type", type);
    }
    if (std::string_view(name) == "iq") {
        s.addChild("query", "urn:example");
    }
    return s;
}

std::string errorCondition(const Element& e) {
    REQUIRE(e.attr("type") == "error");
    const Element* err = e.findChild("error", xmpp::ns::kClient);
    REQUIRE(err);
    return err->firstChildInNs(xmpp::ns::kStanzas)->name();
}

struct Fixture {
    Hooks hooks;
    Router testling{{"example.com"}, hooks};
    std::shared_ptr<FakeSession> alice = std::make_shared<FakeSession>(*Jid::parse("alice@example.com/pc"));
    std::shared_ptr<FakeSession> component = std::make_shared<FakeSession>(*Jid::parse("bot.example.com"));

    Fixture() {
        testling.setComponentDomains({"bot.example.com"});
        testling.bind(alice->jid(), alice);
        testling.setPresence(alice->jid(), true, 0);
    }
};

}  // namespace

TEST_CASE("the handshake is the hex SHA-1 of stream id and secret (XEP-0114 §3)") {
    // The stream id of XEP-0114's example; the digest from coreutils' sha1sum.
    CHECK(componentHandshakeDigest("3BF96D32", "sesame") == "7a98dc4c9e92493d7fd66a25364c862637789c45");
}

TEST_CASE("the handshake compare accepts either hex case and refuses anything else") {
    CHECK(componentHandshakeMatches("3BF96D32", "sesame", "7a98dc4c9e92493d7fd66a25364c862637789c45"));
    CHECK(componentHandshakeMatches("3BF96D32", "sesame", "7A98DC4C9E92493D7FD66A25364C862637789C45"));
    CHECK_FALSE(componentHandshakeMatches("3BF96D32", "sesame!", "7a98dc4c9e92493d7fd66a25364c862637789c45"));
    CHECK_FALSE(componentHandshakeMatches("3BF96D33", "sesame", "7a98dc4c9e92493d7fd66a25364c862637789c45"));
    CHECK_FALSE(componentHandshakeMatches("3BF96D32", "sesame", "7a98dc4c9e92493d7fd66a25364c862637789c4"));
    CHECK_FALSE(componentHandshakeMatches("3BF96D32", "sesame", ""));
}

TEST_CASE_METHOD(Fixture, "a component domain is neither a local host nor a remote domain") {
    CHECK_FALSE(testling.isLocalHost("bot.example.com"));
    CHECK(testling.isComponentDomain("bot.example.com"));
    CHECK_FALSE(testling.isComponentDomain("sub.bot.example.com"));
    CHECK_FALSE(testling.isComponentDomain("example.com"));
}

TEST_CASE_METHOD(Fixture, "stanzas to the domain and to JIDs at it reach the attached component") {
    REQUIRE(testling.attachComponent("bot.example.com", component));
    testling.route(stanza("message", "alice@example.com/pc", "bot.example.com", "chat"));
    testling.route(stanza("iq", "alice@example.com/pc", "user@bot.example.com/res", "get"));
    testling.route(stanza("presence", "alice@example.com/pc", "room@bot.example.com"));
    REQUIRE(component->received.size() == 3);
    CHECK(component->received[1].attr("to") == "user@bot.example.com/res");
    CHECK(alice->received.empty());
}

TEST_CASE_METHOD(Fixture, "a second session for a connected domain is refused, and only the owner detaches") {
    auto other = std::make_shared<FakeSession>(*Jid::parse("bot.example.com"));
    CHECK_FALSE(testling.attachComponent("nobot.example.com", component));
    REQUIRE(testling.attachComponent("bot.example.com", component));
    CHECK_FALSE(testling.attachComponent("bot.example.com", other));
    testling.detachComponent("bot.example.com", other.get());
    CHECK(testling.components().front().second == component);
    testling.detachComponent("bot.example.com", component.get());
    CHECK(testling.components().front().second == nullptr);
    CHECK(testling.attachComponent("bot.example.com", other));
}

TEST_CASE_METHOD(Fixture, "while disconnected: iq and message get service-unavailable, presence is dropped") {
    testling.route(stanza("message", "alice@example.com/pc", "bot.example.com", "chat"));
    testling.route(stanza("iq", "alice@example.com/pc", "user@bot.example.com", "get"));
    testling.route(stanza("presence", "alice@example.com/pc", "bot.example.com"));
    REQUIRE(alice->received.size() == 2);
    CHECK(errorCondition(alice->received[0]) == "service-unavailable");
    CHECK(alice->received[0].attr("from") == "bot.example.com");
    CHECK(errorCondition(alice->received[1]) == "service-unavailable");
}

TEST_CASE_METHOD(Fixture, "stanzas from a component reach local users and errors go back to it") {
    REQUIRE(testling.attachComponent("bot.example.com", component));
    testling.route(stanza("message", "echo@bot.example.com", "alice@example.com/pc", "chat"));
    REQUIRE(alice->received.size() == 1);
    CHECK(alice->received[0].attr("from") == "echo@bot.example.com");
    testling.route(stanza("iq", "echo@bot.example.com", "nobody@example.com/x", "get"));
    REQUIRE(component->received.size() == 1);
    CHECK(errorCondition(component->received[0]) == "service-unavailable");
}
