#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "xmpp/serializer.hpp"
#include "xmpp/stream_parser.hpp"

using namespace xmpp;

namespace {

// Records the events as text so that two parses can be compared.
struct Recorder : StreamParserHandler {
    std::vector<std::string> events;
    StreamHeader header;
    StreamParser* parser = nullptr;
    std::string pauseOn;

    void onStreamOpen(const StreamHeader& h) override {
        header = h;
        events.push_back("open to=" + h.to + " lang=" + h.lang + " ns=" + h.contentNs + " v=" + h.version);
    }
    void onElement(Element&& e) override {
        events.push_back(toString(e, "jabber:client"));
        if (!pauseOn.empty() && e.name() == pauseOn) {
            parser->pause();
        }
    }
    void onStreamClose() override { events.push_back("close"); }
};

const std::string kHeader =
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' "
    "to='example.com' version='1.0' xml:lang='en'>";

const std::string kSample =
    kHeader +
    "<message to='juliet@example.com' id='m1' type='chat'><body>Wherefore art thou, "
    "Romeo? &amp; &lt;3 caf\xC3\xA9 \xF0\x9F\x98\x80</body>"
    "<thread>t&#x41;</thread><x xmlns='urn:example:x' a='&quot;q&quot;'/></message> \n "
    "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq><presence/></stream:stream>";

std::vector<std::string> parseChunks(const std::vector<std::string>& chunks) {
    Recorder rec;
    StreamParser testling(rec, ParserLimits{});
    for (const auto& c : chunks) {
        auto err = testling.feed(c);
        REQUIRE_FALSE(err.has_value());
    }
    return rec.events;
}

std::optional<StreamError> parseError(const std::string& input, ParserLimits limits = {}) {
    Recorder rec;
    StreamParser testling(rec, limits);
    return testling.feed(input);
}

}  // namespace

TEST_CASE("a whole stream yields open, stanzas and close") {
    auto events = parseChunks({kSample});
    REQUIRE(events.size() == 5);
    CHECK(events[0] == "open to=example.com lang=en ns=jabber:client v=1.0");
    CHECK(events[1] ==
          "<message to='juliet@example.com' id='m1' type='chat'><body>Wherefore art thou, Romeo? &amp; &lt;3 "
          "caf\xC3\xA9 \xF0\x9F\x98\x80</body><thread>tA</thread><x xmlns='urn:example:x' "
          "a='&quot;q&quot;'/></message>");
    CHECK(events[2] == "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK(events[3] == "<presence/>");
    CHECK(events[4] == "close");
}

TEST_CASE("a stream split at every byte boundary parses the same") {
    auto whole = parseChunks({kSample});
    for (size_t i = 1; i < kSample.size(); ++i) {
        INFO("split at " << i);
        CHECK(parseChunks({kSample.substr(0, i), kSample.substr(i)}) == whole);
    }
}

TEST_CASE("a stream fed one byte at a time parses the same") {
    std::vector<std::string> bytes;
    for (char c : kSample) {
        bytes.emplace_back(1, c);
    }
    CHECK(parseChunks(bytes) == parseChunks({kSample}));
}

TEST_CASE("the stream element may use any prefix") {
    auto events = parseChunks(
        {"<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client' to='a.example'>"
         "<presence/>"});
    REQUIRE(events.size() == 2);
    CHECK(events[0] == "open to=a.example lang= ns=jabber:client v=");
}

TEST_CASE("a wrong stream namespace is invalid-namespace") {
    auto err = parseError("<stream:stream xmlns:stream='urn:wrong' xmlns='jabber:client'>");
    REQUIRE(err);
    CHECK(err->condition == StreamCondition::InvalidNamespace);
}

TEST_CASE("restricted XML constructs are rejected (RFC 6120 section 11.1)") {
    SECTION("comment") {
        auto err = parseError(kHeader + "<!-- hi -->");
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::RestrictedXml);
    }
    SECTION("comment inside a stanza") {
        auto err = parseError(kHeader + "<message><!-- hi --></message>");
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::RestrictedXml);
    }
    SECTION("processing instruction") {
        auto err = parseError(kHeader + "<message><?php echo 1; ?></message>");
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::RestrictedXml);
    }
    SECTION("DTD") {
        auto err = parseError("<?xml version='1.0'?><!DOCTYPE foo [<!ENTITY x 'y'>]>" + kHeader);
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::RestrictedXml);
    }
    SECTION("undefined entity") {
        auto err = parseError(kHeader + "<message><body>&nbsp;</body></message>");
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::RestrictedXml);
    }
}

TEST_CASE("malformed XML is not-well-formed") {
    auto err = parseError(kHeader + "<message><body></message>");
    REQUIRE(err);
    CHECK(err->condition == StreamCondition::NotWellFormed);
}

TEST_CASE("the parser refuses further input after an error") {
    Recorder rec;
    StreamParser testling(rec, ParserLimits{});
    REQUIRE(testling.feed(kHeader + "<a></b>"));
    auto again = testling.feed("<presence/>");
    REQUIRE(again);
    CHECK(rec.events.size() == 1);
}

TEST_CASE("limits are enforced") {
    ParserLimits limits;
    limits.maxStanzaBytes = 1000;
    limits.maxDepth = 4;
    limits.maxAttributes = 3;

    SECTION("a stanza over the byte limit") {
        auto err =
            parseError(kHeader + "<message><body>" + std::string(2000, 'a') + "</body></message>", limits);
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::PolicyViolation);
    }
    SECTION("a stanza between one and two limits, ending in the next slice") {
        // 1001..2000 bytes used to pass when it began in one slice and ended
        // in the next: each slice alone stays under the limit.
        for (size_t body : {990, 1200, 1900}) {
            auto err = parseError(kHeader + "<message><body>" + std::string(body, 'a') + "</body></message>",
                                  limits);
            INFO(body);
            REQUIRE(err);
            CHECK(err->condition == StreamCondition::PolicyViolation);
        }
    }
    SECTION("the same stanza fed byte by byte") {
        std::string xml = kHeader + "<message><body>" + std::string(1200, 'a') + "</body></message>";
        Recorder rec;
        StreamParser testling(rec, limits);
        std::optional<StreamError> err;
        for (size_t i = 0; i < xml.size() && !err; ++i) {
            err = testling.feed(std::string_view(xml).substr(i, 1));
        }
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::PolicyViolation);
    }
    SECTION("a stanza just under the byte limit passes") {
        auto err =
            parseError(kHeader + "<message><body>" + std::string(900, 'a') + "</body></message>", limits);
        CHECK_FALSE(err);
    }
    SECTION("an unfinished start tag over the byte limit") {
        auto err = parseError(kHeader + "<message to='" + std::string(5000, 'a'), limits);
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::PolicyViolation);
    }
    SECTION("many small stanzas add up to no violation") {
        std::string many = kHeader;
        for (int i = 0; i < 200; ++i) {
            many += "<presence/>";
        }
        CHECK_FALSE(parseError(many, limits));
    }
    SECTION("too deep") {
        auto err = parseError(kHeader + "<message><a><b><c><d/></c></b></a></message>", limits);
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::PolicyViolation);
    }
    SECTION("depth at the limit passes") {
        CHECK_FALSE(parseError(kHeader + "<message><a><b><c/></b></a></message>", limits));
    }
    SECTION("too many attributes") {
        auto err = parseError(kHeader + "<message a='1' b='2' c='3' d='4'/>", limits);
        REQUIRE(err);
        CHECK(err->condition == StreamCondition::PolicyViolation);
    }
}

TEST_CASE("text between stanzas other than whitespace is bad-format") {
    auto err = parseError(kHeader + "  hello <presence/>");
    REQUIRE(err);
    CHECK(err->condition == StreamCondition::BadFormat);
}

TEST_CASE("pause stops at the element and reset restarts the stream") {
    Recorder rec;
    StreamParser testling(rec, ParserLimits{});
    rec.parser = &testling;
    rec.pauseOn = "starttls";
    auto err =
        testling.feed(kHeader + "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>\x16\x03\x01 binary");
    CHECK_FALSE(err);
    REQUIRE(rec.events.size() == 2);
    testling.reset();
    CHECK_FALSE(testling.feed(kHeader + "<presence/>"));
    REQUIRE(rec.events.size() == 4);
    CHECK(rec.events[3] == "<presence/>");
}

TEST_CASE("namespaced attributes survive a round trip") {
    auto events = parseChunks({kHeader + "<message xml:lang='de' xmlns:foo='urn:foo' foo:bar='1'/>"});
    REQUIRE(events.size() == 2);
    CHECK(events[1] == "<message xml:lang='de' xmlns:ns1='urn:foo' ns1:bar='1'/>");
}

TEST_CASE("a start tag split in two chunks is reported as soon as it is complete") {
    // Expat's reparse deferral would hold this back until much more data came.
    const std::string header =
        "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'><a/>";
    for (size_t split = 1; split < header.size(); ++split) {
        INFO("split at " << split);
        Recorder rec;
        StreamParser testling(rec, ParserLimits{});
        CHECK_FALSE(testling.feed(header.substr(0, split)));
        CHECK_FALSE(testling.feed(header.substr(split)));
        CHECK(rec.events.size() == 2);
    }
}

TEST_CASE("a parser released while idle picks the stream up again, prefix and namespaces included") {
    Recorder rec;
    StreamParser testling(rec, ParserLimits{});
    const std::string header =
        "<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client' "
        "xmlns:x='urn:x' to='a.example'>";
    CHECK_FALSE(testling.feed(header + "<presence/>"));
    CHECK(testling.releaseIfIdle());
    CHECK_FALSE(testling.releaseIfIdle());  // nothing left to release
    CHECK_FALSE(testling.feed("<message><body>after</body><x:y/></message>"));
    CHECK(testling.releaseIfIdle());
    CHECK_FALSE(testling.feed("<iq type='get' id='1'/></s:stream>"));
    REQUIRE(rec.events.size() == 5);
    CHECK(rec.events[0] == "open to=a.example lang= ns=jabber:client v=");
    CHECK(rec.events[2] == "<message><body>after</body><y xmlns='urn:x'/></message>");
    CHECK(rec.events[3] == "<iq type='get' id='1'/>");
    CHECK(rec.events[4] == "close");
}

TEST_CASE("a parser in the middle of a stanza is not released") {
    Recorder rec;
    StreamParser testling(rec, ParserLimits{});
    CHECK_FALSE(testling.feed(kHeader + "<message><body>half"));
    CHECK_FALSE(testling.releaseIfIdle());
    CHECK_FALSE(testling.feed("</body></message>"));
    CHECK(testling.releaseIfIdle());
    CHECK(rec.events.size() == 2);
}

TEST_CASE("limits still hold after a release") {
    ParserLimits limits;
    limits.maxStanzaBytes = 1000;
    Recorder rec;
    StreamParser testling(rec, limits);
    CHECK_FALSE(testling.feed(kHeader));
    CHECK(testling.releaseIfIdle());
    auto err = testling.feed("<message><body>" + std::string(2000, 'a') + "</body></message>");
    REQUIRE(err);
    CHECK(err->condition == StreamCondition::PolicyViolation);
}
