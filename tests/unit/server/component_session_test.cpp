// The XEP-0114 component stream against a fake transport: header, handshake,
// the errors of each failure, and stanzas both ways through the router.
#include <catch2/catch.hpp>

#include <regex>

#include "server/component/component_service.hpp"
#include "server/component/handshake.hpp"
#include "server/net/shaper.hpp"
#include "server/net/transport.hpp"
#include "server/router.hpp"
#include "server/worker.hpp"
#include "tests/unit/server/fake_session.hpp"
#include "xmpp/ns.hpp"

using namespace xmppd;
using xmpp::Element;
using xmpp::Jid;

namespace {

// Runs posted work when the test says so, never under the poster's feet.
struct QueueWorker : Worker {
    void post(std::function<void()> fn) override { queue.push_back(std::move(fn)); }
    size_t index() const override { return 0; }
    bool inThisThread() const override { return true; }
    void drain() {
        while (!queue.empty()) {
            auto fn = std::move(queue.front());
            queue.erase(queue.begin());
            fn();
        }
    }
    std::vector<std::function<void()>> queue;
};

struct FakeTransport : Transport {
    void setHandler(TransportHandler* h) override { handler = h; }
    void start() override {}
    void send(std::string_view bytes) override { sent += bytes; }
    void startTls() override {}
    bool isTls() const override { return false; }
    std::string channelBinding(std::string_view) const override { return {}; }
    std::string_view tlsVersion() const override { return {}; }
    void close() override { closed = true; }
    size_t pendingBytes() const override { return pending; }
    const std::string& peer() const override { return peer_; }
    void trim() override {}
    void pauseReading(std::chrono::milliseconds pause) override { paused = pause; }  // the latest wins
    std::chrono::milliseconds paused{0};

    TransportHandler* handler = nullptr;
    std::string sent;
    bool closed = false;
    size_t pending = 0;
    std::string peer_ = "192.0.2.7:40000";
};

using FakeSession = test::FakeSession<QueueWorker>;

const std::string kHeader =
    "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' "
    "to='bot.example.com'>";

struct Fixture {
    Hooks hooks;
    Config config;
    Router router{{"example.com"}, hooks};
    ComponentService service{config, router, 1};
    QueueWorker worker;
    std::shared_ptr<FakeSession> alice = std::make_shared<FakeSession>(*Jid::parse("alice@example.com/pc"));

    Fixture() {
        config.components.push_back({"bot.example.com", "s3cret"});
        router.setComponentDomains({"bot.example.com"});
        router.bind(alice->jid(), alice);
        router.setPresence(alice->jid(), true, 0);
    }
    ~Fixture() {
        service.shutdownWorker(worker);
        worker.drain();
    }

    std::shared_ptr<FakeTransport> connect() {
        auto t = std::make_shared<FakeTransport>();
        service.accept(worker, t);
        return t;
    }
    static std::string streamId(const FakeTransport& t) {
        std::smatch m;
        REQUIRE(std::regex_search(t.sent, m, std::regex("id='([^']+)'")));
        return m[1];
    }
    std::shared_ptr<FakeTransport> authenticated() {
        auto t = connect();
        t->handler->onData(kHeader);
        t->handler->onData("<handshake>" + componentHandshakeDigest(streamId(*t), "s3cret") + "</handshake>");
        REQUIRE(t->sent.size() >= 12);
        REQUIRE(t->sent.substr(t->sent.size() - 12) == "<handshake/>");
        t->sent.clear();
        return t;
    }
    bool attached() {
        auto all = router.components();
        return all.size() == 1 && all[0].second != nullptr;
    }
};

bool endsWithStreamError(const FakeTransport& t, const std::string& condition) {
    return t.sent.find("<stream:error><" + condition + " xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>") !=
               std::string::npos &&
           t.sent.size() >= 16 && t.sent.substr(t.sent.size() - 16) == "</stream:stream>" && t.closed;
}

}  // namespace

TEST_CASE_METHOD(Fixture, "the right handshake attaches the component's domain") {
    auto t = connect();
    t->handler->onData(kHeader);
    CHECK(t->sent.find("xmlns='jabber:component:accept'") != std::string::npos);
    CHECK(t->sent.find("from='bot.example.com'") != std::string::npos);
    CHECK_FALSE(attached());
    t->handler->onData("<handshake>" + componentHandshakeDigest(streamId(*t), "s3cret") + "</handshake>");
    CHECK(t->sent.substr(t->sent.size() - 12) == "<handshake/>");
    CHECK(attached());
    CHECK_FALSE(t->closed);
}

TEST_CASE_METHOD(Fixture, "a wrong secret is not-authorized") {
    auto t = connect();
    t->handler->onData(kHeader);
    t->handler->onData("<handshake>" + componentHandshakeDigest(streamId(*t), "guess") + "</handshake>");
    CHECK(endsWithStreamError(*t, "not-authorized"));
    CHECK_FALSE(attached());
}

TEST_CASE_METHOD(Fixture, "a domain without a component is host-unknown") {
    auto t = connect();
    t->handler->onData(
        "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' "
        "to='nobody.example.com'>");
    CHECK(endsWithStreamError(*t, "host-unknown"));
}

TEST_CASE_METHOD(Fixture, "anything but the handshake first is not-authorized") {
    auto t = connect();
    t->handler->onData(kHeader + "<message from='x@bot.example.com' to='alice@example.com'/>");
    CHECK(endsWithStreamError(*t, "not-authorized"));
    CHECK(alice->received.empty());
}

TEST_CASE_METHOD(Fixture, "a second stream for a connected domain gets conflict and the first stays") {
    auto first = authenticated();
    auto second = connect();
    second->handler->onData(kHeader);
    second->handler->onData("<handshake>" + componentHandshakeDigest(streamId(*second), "s3cret") +
                            "</handshake>");
    CHECK(endsWithStreamError(*second, "conflict"));
    CHECK(attached());
    CHECK_FALSE(first->closed);
}

TEST_CASE_METHOD(Fixture, "stanzas from the component reach users in jabber:client") {
    auto t = authenticated();
    t->handler->onData(
        "<message from='echo@bot.example.com' to='alice@example.com/pc' "
        "type='chat'><body>hi</body></message>");
    REQUIRE(alice->received.size() == 1);
    const Element& m = alice->received[0];
    CHECK(m.ns() == xmpp::ns::kClient);
    CHECK(m.attr("from") == "echo@bot.example.com");
    REQUIRE(m.findChild("body", xmpp::ns::kClient));
    CHECK(m.findChild("body", xmpp::ns::kClient)->text() == "hi");
}

TEST_CASE_METHOD(Fixture, "a 'from' outside the component's domain is invalid-from") {
    auto t = authenticated();
    t->handler->onData(
        "<message from='alice@example.com' to='alice@example.com/pc'><body>x</body></message>");
    CHECK(endsWithStreamError(*t, "invalid-from"));
    CHECK(alice->received.empty());
    CHECK_FALSE(attached());
}

TEST_CASE_METHOD(Fixture, "stanzas to the domain are written in the stream's default namespace") {
    auto t = authenticated();
    Element m("message", std::string(xmpp::ns::kClient));
    m.setAttr("from", "alice@example.com/pc").setAttr("to", "user@bot.example.com").setAttr("type", "chat");
    m.addChild("body", std::string(xmpp::ns::kClient)).addText("hello");
    router.route(m);
    CHECK(t->sent ==
          "<message from='alice@example.com/pc' to='user@bot.example.com' "
          "type='chat'><body>hello</body></message>");
}

TEST_CASE_METHOD(Fixture, "a component that does not read is closed with policy-violation") {
    auto t = authenticated();
    t->pending = config.limits.maxOutboundBytes + 1;
    Element m("message", std::string(xmpp::ns::kClient));
    m.setAttr("from", "alice@example.com/pc").setAttr("to", "bot.example.com").setAttr("type", "chat");
    router.route(m);
    CHECK(endsWithStreamError(*t, "policy-violation"));
    CHECK_FALSE(attached());
    // Now disconnected: the next message is answered for it.
    router.route(m);
    REQUIRE(alice->received.size() == 1);
    CHECK(alice->received[0].attr("type") == "error");
}

TEST_CASE("a shaper lets a second's worth through, then asks for a pause that keeps the rate") {
    using namespace std::chrono;
    auto t0 = Shaper::Clock::time_point{} + hours(1);
    Shaper testling(1000, t0);
    CHECK(testling.consume(1000, t0) == milliseconds(0));  // the burst
    // 500 bytes more at once: half a second of pause.
    auto pause = testling.consume(500, t0);
    CHECK(pause >= milliseconds(500));
    CHECK(pause <= milliseconds(501));
    // After the pause the debt is paid; one second later the burst is back.
    CHECK(testling.consume(0, t0 + milliseconds(501)) == milliseconds(0));
    CHECK(testling.consume(1000, t0 + milliseconds(1600)) == milliseconds(0));
    CHECK(testling.consume(1, t0 + milliseconds(1600)) > milliseconds(0));
}

TEST_CASE("an unlimited shaper never pauses") {
    Shaper testling(0);
    CHECK_FALSE(testling.limited());
    CHECK(testling.consume(size_t(1) << 30, Shaper::Clock::now()).count() == 0);
}

TEST_CASE_METHOD(Fixture, "a component over its bytes_per_second stops being read for a while") {
    config.components[0].bytesPerSecond = 100;
    auto t = connect();
    t->handler->onData(kHeader);
    std::string handshake = "<handshake>" + componentHandshakeDigest(streamId(*t), "s3cret") + "</handshake>";
    t->handler->onData(handshake);
    std::string message = "<message from='bot.example.com' to='alice@example.com/pc'><body>" +
                          std::string(400, 'x') + "</body></message>";
    t->handler->onData(message);
    // Everything since the stream header, less the one-second burst, at 100 bytes/s.
    size_t debt = kHeader.size() + handshake.size() + message.size() - 100;
    auto expected = std::chrono::milliseconds(debt * 10);
    CHECK(t->paused >= expected - std::chrono::milliseconds(50));
    CHECK(t->paused <= expected + std::chrono::milliseconds(50));
    CHECK_FALSE(t->closed);
    worker.drain();
    CHECK(alice->received.size() == 1);  // what was read is still delivered
}

TEST_CASE_METHOD(Fixture, "a component with its own max_stanza_bytes is held to it") {
    config.components[0].maxStanzaBytes = 1024;
    auto t = authenticated();
    t->handler->onData("<message from='bot.example.com' to='alice@example.com/pc'><body>" +
                       std::string(2000, 'x') + "</body></message>");
    CHECK(endsWithStreamError(*t, "policy-violation"));
}

TEST_CASE_METHOD(Fixture, "more connections per minute than allowed get policy-violation") {
    config.components[0].connectionsPerMinute = 2;
    auto first = connect();
    first->handler->onData(kHeader);
    auto second = connect();
    second->handler->onData(kHeader);
    CHECK_FALSE(first->closed);
    CHECK_FALSE(second->closed);
    auto third = connect();
    third->handler->onData(kHeader);
    CHECK(endsWithStreamError(*third, "policy-violation"));
    CHECK(third->sent.find("more than 2 connections per minute for bot.example.com") != std::string::npos);
}
