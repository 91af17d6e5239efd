#include <catch2/catch.hpp>

#include "xmpp/errors.hpp"
#include "xmpp/serializer.hpp"
#include "xmpp/stream_parser.hpp"

using namespace xmpp;

TEST_CASE("text and attribute values are escaped") {
    Element testling("message", "jabber:client");
    testling.setAttr("id", "a'b\"c<d>&");
    testling.addChild("body", "jabber:client").addText("1 < 2 & 3 > 2");
    CHECK(toString(testling, "jabber:client") ==
          "<message id='a&apos;b&quot;c&lt;d&gt;&amp;'><body>1 &lt; 2 &amp; 3 &gt; 2</body></message>");
}

TEST_CASE("xmlns is written only where the namespace changes") {
    Element testling("iq", "jabber:client");
    auto& q = testling.addChild("query", "jabber:iq:version");
    q.addChild("name", "jabber:iq:version").addText("xmppd");
    CHECK(toString(testling, "jabber:client") ==
          "<iq><query xmlns='jabber:iq:version'><name>xmppd</name></query></iq>");
    CHECK(toString(testling) ==
          "<iq xmlns='jabber:client'><query xmlns='jabber:iq:version'><name>xmppd</name></query></iq>");
}

TEST_CASE("stream errors carry the condition in the streams namespace") {
    StreamError testling{StreamCondition::NotWellFormed, "oops"};
    CHECK(toString(testling.toElement(), "jabber:client") ==
          "<error xmlns='http://etherx.jabber.org/streams'><not-well-formed "
          "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
          "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>oops</text></error>");
}

TEST_CASE("an error reply swaps addresses and keeps the payload of a message") {
    Element msg("message", "jabber:client");
    msg.setAttr("from", "a@x/r").setAttr("to", "b@x").setAttr("id", "1");
    msg.addChild("body", "jabber:client").addText("hi");
    auto testling = makeErrorReply(msg, StanzaError(StanzaCondition::ServiceUnavailable));
    CHECK(toString(testling, "jabber:client") ==
          "<message to='a@x/r' from='b@x' id='1' type='error'><body>hi</body><error "
          "type='cancel'><service-unavailable "
          "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
}

TEST_CASE("condition names map both ways") {
    for (int i = 0; i <= static_cast<int>(StanzaCondition::UnexpectedRequest); ++i) {
        auto c = static_cast<StanzaCondition>(i);
        CHECK(stanzaConditionFromString(toString(c)) == c);
    }
    CHECK_FALSE(stanzaConditionFromString("no-such-condition"));
}

TEST_CASE("whitespace in attributes and CR in text survive a parse round trip") {
    Element testling("message", "jabber:client");
    testling.setAttr("id", "tab\there\nnewline\rcr");
    testling.addChild("body", "jabber:client").addText("line one\r\nline two\ttabbed");
    const std::string xml = toString(testling, "jabber:client");
    CHECK(xml.find('\n') == std::string::npos);
    CHECK(xml.find('\r') == std::string::npos);
    auto parsed = parseStanza(xml);
    REQUIRE(parsed.has_value());
    CHECK(parsed->attr("id") == "tab\there\nnewline\rcr");
    REQUIRE(parsed->findChild("body", "jabber:client") != nullptr);
    CHECK(parsed->findChild("body", "jabber:client")->text() == "line one\r\nline two\ttabbed");
    CHECK(toString(*parsed, "jabber:client") == xml);
}
