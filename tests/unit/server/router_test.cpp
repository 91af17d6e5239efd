// Routing rules of RFC 6121 §8.5 for local users, against fake sessions.
#include <catch2/catch.hpp>

#include "server/router.hpp"
#include "server/worker.hpp"
#include "tests/unit/server/fake_session.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/serializer.hpp"

using namespace xmppd;
using xmpp::Element;
using xmpp::Jid;

namespace {

using FakeSession = test::FakeSession<>;

Jid jid(const char* s) {
    return *Jid::parse(s);
}

Element message(const char* from, const char* to, const char* type = "chat") {
    Element m("message", std::string(xmpp::ns::kClient));
    m.setAttr("from", from).setAttr("to", to).setAttr("type", type).setAttr("id", "m1");
    m.addChild("body", std::string(xmpp::ns::kClient)).addText("hi");
    return m;
}

struct Fixture {
    Hooks hooks;
    Router testling{{"example.com"}, hooks};

    std::shared_ptr<FakeSession> online(const char* full, int priority, bool available = true) {
        auto s = std::make_shared<FakeSession>(jid(full));
        testling.bind(s->jid(), s);
        testling.setPresence(s->jid(), available, priority);
        return s;
    }
    std::string errorCondition(const FakeSession& s) {
        REQUIRE(!s.received.empty());
        const auto& last = s.received.back();
        REQUIRE(last.attr("type") == "error");
        const Element* err = last.findChild("error", xmpp::ns::kClient);
        REQUIRE(err);
        return err->firstChildInNs(xmpp::ns::kStanzas)->name();
    }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "a message to a full JID reaches only that resource") {
    auto a = online("alice@example.com/pc", 0);
    auto b1 = online("bob@example.com/one", 0);
    auto b2 = online("bob@example.com/two", 0);
    testling.route(message("alice@example.com/pc", "bob@example.com/two"));
    CHECK(b1->received.empty());
    REQUIRE(b2->received.size() == 1);
    CHECK(b2->received[0].attr("from") == "alice@example.com/pc");
}

TEST_CASE_METHOD(
    Fixture, "a chat message to a bare JID reaches every highest-priority resource (RFC 6121 8.5.2.1.1)") {
    auto a = online("alice@example.com/pc", 0);
    auto b1 = online("bob@example.com/one", 5);
    auto b2 = online("bob@example.com/two", 5);
    auto b3 = online("bob@example.com/low", 1);
    testling.route(message("alice@example.com/pc", "bob@example.com"));
    CHECK(b1->received.size() == 1);
    CHECK(b2->received.size() == 1);
    CHECK(b3->received.empty());
}

TEST_CASE_METHOD(Fixture, "negative-priority resources do not get messages to the bare JID") {
    auto a = online("alice@example.com/pc", 0);
    auto b = online("bob@example.com/one", -1);
    testling.route(message("alice@example.com/pc", "bob@example.com"));
    CHECK(b->received.empty());
    CHECK(errorCondition(*a) == "service-unavailable");
}

TEST_CASE_METHOD(Fixture,
                 "a message to a user without resources runs delivery_failed, whose default bounces") {
    auto a = online("alice@example.com/pc", 0);
    testling.route(message("alice@example.com/pc", "nobody@example.com"));
    CHECK(errorCondition(*a) == "service-unavailable");
    CHECK(a->received.back().attr("from") == "nobody@example.com");
}

TEST_CASE_METHOD(Fixture, "a Store-band delivery_failed handler takes the message before the bounce") {
    auto a = online("alice@example.com/pc", 0);
    int stored = 0;
    hooks.deliveryFailed.add(Band::Store, 0, "test", [&](DeliveryFailed&) {
        ++stored;
        return Flow::Stop;
    });
    testling.route(message("alice@example.com/pc", "bob@example.com"));
    CHECK(stored == 1);
    CHECK(a->received.empty());
}

TEST_CASE_METHOD(Fixture,
                 "a message to an offline full JID falls back to the bare JID (RFC 6121 8.5.3.2.1)") {
    auto a = online("alice@example.com/pc", 0);
    auto b = online("bob@example.com/one", 0);
    testling.route(message("alice@example.com/pc", "bob@example.com/gone"));
    CHECK(b->received.size() == 1);
}

TEST_CASE_METHOD(Fixture, "an iq to an offline full JID is service-unavailable") {
    auto a = online("alice@example.com/pc", 0);
    Element iq("iq", std::string(xmpp::ns::kClient));
    iq.setAttr("from", "alice@example.com/pc")
        .setAttr("to", "bob@example.com/gone")
        .setAttr("type", "get")
        .setAttr("id", "q");
    iq.addChild("query", "urn:example");
    testling.route(iq);
    CHECK(errorCondition(*a) == "service-unavailable");
}

TEST_CASE_METHOD(Fixture, "an iq with an unknown namespace to the server is service-unavailable") {
    auto a = online("alice@example.com/pc", 0);
    Element iq("iq", std::string(xmpp::ns::kClient));
    iq.setAttr("from", "alice@example.com/pc")
        .setAttr("to", "example.com")
        .setAttr("type", "get")
        .setAttr("id", "q");
    iq.addChild("query", "urn:example:nothing");
    testling.route(iq);
    CHECK(errorCondition(*a) == "service-unavailable");
}

TEST_CASE_METHOD(Fixture, "an iq handler answers for the server") {
    auto a = online("alice@example.com/pc", 0);
    testling.addIqHandler(IqScope::Server, "urn:xmpp:ping", "ping",
                          [](const IqRequest&, const IqResponder& r) { r.result(); });
    Element iq("iq", std::string(xmpp::ns::kClient));
    iq.setAttr("from", "alice@example.com/pc")
        .setAttr("to", "example.com")
        .setAttr("type", "get")
        .setAttr("id", "p1");
    iq.addChild("ping", "urn:xmpp:ping");
    testling.route(iq);
    REQUIRE(a->received.size() == 1);
    CHECK(xmpp::toString(a->received[0], xmpp::ns::kClient) ==
          "<iq to='alice@example.com/pc' from='example.com' id='p1' type='result'/>");
}

TEST_CASE_METHOD(Fixture, "a second handler for the same iq namespace is an error naming both modules") {
    auto noop = [](const IqRequest&, const IqResponder&) {};
    testling.addIqHandler(IqScope::Server, "urn:x", "first", noop);
    CHECK_THROWS_WITH(testling.addIqHandler(IqScope::Server, "urn:x", "second", noop),
                      Catch::Contains("first") && Catch::Contains("second"));
}

TEST_CASE_METHOD(Fixture, "a stanza to an unknown domain is remote-server-not-found") {
    auto a = online("alice@example.com/pc", 0);
    testling.route(message("alice@example.com/pc", "bob@nowhere.example"));
    CHECK(errorCondition(*a) == "remote-server-not-found");
}

TEST_CASE_METHOD(Fixture, "a malformed 'to' is jid-malformed") {
    auto a = online("alice@example.com/pc", 0);
    testling.route(message("alice@example.com/pc", "a@b@example.com"));
    CHECK(errorCondition(*a) == "jid-malformed");
}

TEST_CASE_METHOD(Fixture, "errors are never answered with errors") {
    auto a = online("alice@example.com/pc", 0);
    testling.route(message("alice@example.com/pc", "nobody@example.com", "error"));
    CHECK(a->received.empty());
}

TEST_CASE_METHOD(Fixture, "groupchat to a bare JID is service-unavailable (RFC 6121 8.5.2.1.2)") {
    auto a = online("alice@example.com/pc", 0);
    auto b = online("bob@example.com/one", 0);
    testling.route(message("alice@example.com/pc", "bob@example.com", "groupchat"));
    CHECK(b->received.empty());
    CHECK(errorCondition(*a) == "service-unavailable");
}

TEST_CASE_METHOD(Fixture,
                 "binding a taken full JID returns the old session, and its late unbind is harmless") {
    auto first = online("bob@example.com/one", 0);
    auto second = std::make_shared<FakeSession>(jid("bob@example.com/one"));
    auto old = testling.bind(second->jid(), second);
    CHECK(old == first);
    testling.unbind(first->jid(), first.get());
    CHECK(testling.sessionCount() == 1);
}

TEST_CASE_METHOD(Fixture, "stanza_inbound handlers can stop a stanza") {
    auto a = online("alice@example.com/pc", 0);
    auto b = online("bob@example.com/one", 0);
    hooks.stanzaInbound.add(Band::Policy, 0, "block", [](StanzaInbound& in) {
        return in.from.local() == "alice" ? Flow::Stop : Flow::Continue;
    });
    testling.route(message("alice@example.com/pc", "bob@example.com"));
    CHECK(b->received.empty());
}

TEST_CASE_METHOD(Fixture, "a throwing hook handler is skipped, not fatal") {
    auto a = online("alice@example.com/pc", 0);
    auto b = online("bob@example.com/one", 0);
    hooks.stanzaInbound.add(Band::Validate, 0, "broken",
                            [](StanzaInbound&) -> Flow { throw std::runtime_error("boom"); });
    testling.route(message("alice@example.com/pc", "bob@example.com"));
    CHECK(b->received.size() == 1);
}
