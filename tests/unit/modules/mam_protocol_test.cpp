// The archive's protocol pieces without I/O: ids, XEP-0082 stamps, query
// and preference parsing, the elements we build.
#include <catch2/catch.hpp>

#include <set>

#include "modules/mam/ids.hpp"
#include "modules/mam/prefs.hpp"
#include "modules/mam/query.hpp"
#include "xmpp/serializer.hpp"

using namespace xmppd::mam;
using xmpp::Element;
using xmpp::StanzaCondition;

namespace {

Element parse(const std::string& xml) {
    auto e = parseStored(xml);
    REQUIRE(e);
    return std::move(*e);
}

std::string form(const std::string& fields) {
    return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>"
           "<value>urn:xmpp:mam:2</value></field>" +
           fields + "</x>";
}

std::string field(const std::string& var, const std::string& value) {
    return "<field var='" + var + "'><value>" + value + "</value></field>";
}

QueryRequest parseOk(const std::string& inner, int64_t maxPage = 50) {
    auto r = parseQuery(parse("<query xmlns='urn:xmpp:mam:2' queryid='q1'>" + inner + "</query>"), maxPage);
    if (auto* e = std::get_if<xmpp::StanzaError>(&r)) {
        FAIL("unexpected error " << xmpp::toString(e->condition) << ": " << e->text);
    }
    return std::get<QueryRequest>(r);
}

StanzaCondition parseError(const std::string& inner) {
    auto r = parseQuery(parse("<query xmlns='urn:xmpp:mam:2'>" + inner + "</query>"), 50);
    auto* e = std::get_if<xmpp::StanzaError>(&r);
    REQUIRE(e);
    return e->condition;
}

}  // namespace

TEST_CASE("mam ids: increasing, time-ordered, rendered at fixed width", "[mam]") {
    IdGenerator testling(42);
    std::set<int64_t> seen;
    int64_t last = 0;
    for (int i = 0; i < 1000; ++i) {
        int64_t id = testling.next(1700000000000 + i / 100);
        CHECK(id > last);
        CHECK(idMillis(id) >= 1700000000000 + i / 100);
        last = id;
        seen.insert(id);
    }
    CHECK(seen.size() == 1000);
    // The clock going back does not make ids go back.
    CHECK(testling.next(1600000000000) > last);
    CHECK(testling.next(1800000000000) >= firstIdOfMillis(1800000000000));

    CHECK(renderId(0x1234abcdLL) == "000000001234abcd");
    CHECK(parseId("000000001234abcd") == 0x1234abcdLL);
    CHECK(parseId(renderId(INT64_MAX)) == INT64_MAX);
    CHECK_FALSE(parseId("000000001234ABCD"));
    CHECK_FALSE(parseId("1234abcd"));
    CHECK_FALSE(parseId("8000000000000000"));  // beyond 63 bits
    CHECK_FALSE(parseId("0000000000000000"));
    CHECK_FALSE(parseId("00000000000000g1"));
    CHECK(firstIdOfMillis(-5) == 0);
    CHECK(firstIdOfMillis(kMaxIdMillis + 1) == INT64_MAX);
}

TEST_CASE("mam stamps: XEP-0082 DateTime", "[mam]") {
    CHECK(formatStamp(0) == "1970-01-01T00:00:00.000Z");
    CHECK(formatStamp(1700000000123) == "2023-11-14T22:13:20.123Z");
    CHECK(parseStampMicros("2023-11-14T22:13:20Z") == 1700000000000000);
    CHECK(parseStampMicros("2023-11-14T22:13:20.123Z") == 1700000000123000);
    CHECK(parseStampMicros("2023-11-14T22:13:20.1234567Z") == 1700000000123456);
    CHECK(parseStampMicros("2023-11-15T00:13:20+02:00") == 1700000000000000);
    CHECK(parseStampMicros("2023-11-14T20:43:20-01:30") == 1700000000000000);
    CHECK(parseStampMicros("1969-12-31T23:59:59Z") == -1000000);
    // XEP-0082 example 2 (DateTime).
    CHECK(parseStampMicros("1969-07-21T02:56:15Z") == -14159025000000);
    for (const char* bad : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14 22:13:20Z",
                            "2023-02-30T00:00:00Z", "2023-11-14T24:00:00Z", "2023-11-14T22:13:20.Z",
                            "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20+0200", "yyyy-11-14T22:13:20Z"}) {
        INFO(bad);
        CHECK_FALSE(parseStampMicros(bad));
    }
}

TEST_CASE("mam query: a query without form or set pages everything", "[mam]") {
    auto r = parseOk("");
    CHECK(r.queryId == "q1");
    CHECK(r.query.max == 50);
    CHECK(r.query.withJid.empty());
    CHECK_FALSE(r.query.startMs);
    CHECK_FALSE(r.query.lastPage);
    CHECK_FALSE(r.flipPage);
}

TEST_CASE("mam query: the form fields", "[mam]") {
    auto r = parseOk(form(field("with", "Juliet@Capulet.lit/Balcony") +
                          field("start", "2010-06-07T00:00:00.0005Z") +
                          field("end", "2010-07-07T13:23:54.9999Z") + field("after-id", renderId(11)) +
                          field("before-id", renderId(99)) + "<field var='ids'><value>" + renderId(12) +
                          "</value><value>" + renderId(13) + "</value></field>") +
                     "<flip-page/>");
    CHECK(r.query.withJid == "juliet@capulet.lit");
    CHECK(r.query.withResource == "Balcony");
    // Inclusive bounds in milliseconds: rounded inwards.
    CHECK(r.query.startMs == 1275868800001);
    CHECK(r.query.endMs == 1278509034999);
    CHECK(r.query.afterId == 11);
    CHECK(r.query.beforeId == 99);
    CHECK(r.query.ids == std::vector<int64_t>{12, 13});
    CHECK(r.flipPage);
}

TEST_CASE("mam query: empty fields are absent", "[mam]") {
    auto r = parseOk(form("<field var='with'/><field var='start'><value></value></field>"));
    CHECK(r.query.withJid.empty());
    CHECK_FALSE(r.query.startMs);
}

TEST_CASE("mam query: result set management", "[mam]") {
    auto r = parseOk("<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>" + renderId(5) +
                     "</after></set>");
    CHECK(r.query.max == 10);
    CHECK(r.query.rsmAfter == 5);
    r = parseOk("<set xmlns='http://jabber.org/protocol/rsm'><max>1000</max><before/></set>", 250);
    CHECK(r.query.max == 250);
    CHECK(r.query.lastPage);
    CHECK_FALSE(r.query.rsmBefore);
    r = parseOk("<set xmlns='http://jabber.org/protocol/rsm'><before>" + renderId(7) + "</before></set>");
    CHECK(r.query.rsmBefore == 7);
    CHECK_FALSE(r.query.lastPage);
}

TEST_CASE("mam query: errors", "[mam]") {
    // §4.1.5: an unknown field is feature-not-implemented.
    CHECK(parseError(form(field("include-groupchat", "true"))) == StanzaCondition::FeatureNotImplemented);
    CHECK(parseError(form(field("{urn:example}search", "x"))) == StanzaCondition::FeatureNotImplemented);
    CHECK(parseError("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1"
                     "</value></field></x>") == StanzaCondition::BadRequest);
    CHECK(parseError(form(field("start", "yesterday"))) == StanzaCondition::BadRequest);
    CHECK(parseError(form(field("with", "a@b@c"))) == StanzaCondition::JidMalformed);
    CHECK(parseError(form("<field var='with'><value>a@b</value><value>c@d</value></field>")) ==
          StanzaCondition::BadRequest);
    // §4.1.3: an id that cannot be ours cannot be in the archive either.
    CHECK(parseError(form(field("after-id", "28482-98726-73623"))) == StanzaCondition::ItemNotFound);
    CHECK(parseError(form(field("ids", "nope"))) == StanzaCondition::ItemNotFound);
    std::string many = "<field var='ids'>";
    for (int i = 1; i <= 251; ++i) {
        many += "<value>" + renderId(i) + "</value>";
    }
    CHECK(parseError(form(many + "</field>")) == StanzaCondition::BadRequest);
    CHECK(parseError("<set xmlns='http://jabber.org/protocol/rsm'><after>nope</after></set>") ==
          StanzaCondition::ItemNotFound);
    CHECK(parseError("<set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set>") ==
          StanzaCondition::BadRequest);
    CHECK(parseError("<set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set>") ==
          StanzaCondition::BadRequest);
    CHECK(parseError("<set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set>") ==
          StanzaCondition::FeatureNotImplemented);
    auto r = parseQuery(parse("<query xmlns='urn:xmpp:mam:2' node='urn:xmpp:microblog:0'/>"), 50);
    CHECK(std::get<xmpp::StanzaError>(r).condition == StanzaCondition::ItemNotFound);
}

TEST_CASE("mam query: the elements we send", "[mam]") {
    ArchivedMessage item{0x55, 1700000000123, "romeo@montague.lit", "", Direction::In, ""};
    Element original =
        parse("<message from='romeo@montague.lit/orchard' type='chat'><body>hi</body></message>");
    auto m = resultMessage("juliet@capulet.lit/balcony", "juliet@capulet.lit", "f27", item, original);
    CHECK(xmpp::toString(m, "jabber:client") ==
          "<message to='juliet@capulet.lit/balcony' from='juliet@capulet.lit'>"
          "<result xmlns='urn:xmpp:mam:2' queryid='f27' id='0000000000000055'>"
          "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "
          "stamp='2023-11-14T22:13:20.123Z'/>"
          "<message xmlns='jabber:client' from='romeo@montague.lit/orchard' type='chat'><body>hi</body>"
          "</message></forwarded></result></message>");

    Page page;
    page.count = 20;
    CHECK(xmpp::toString(fin(page)) ==
          "<fin xmlns='urn:xmpp:mam:2' complete='false'><set xmlns='http://jabber.org/protocol/rsm'>"
          "<count>20</count></set></fin>");
    page.items = {item, item};
    page.items.back().id = 0x56;
    page.complete = true;
    CHECK(xmpp::toString(fin(page)) ==
          "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/rsm'>"
          "<first>0000000000000055</first><last>0000000000000056</last><count>20</count></set></fin>");

    CHECK(xmpp::toString(metadata(std::nullopt)) == "<metadata xmlns='urn:xmpp:mam:2'/>");
    auto form = queryForm();
    const Element* x = form.findChild("x", "jabber:x:data");
    REQUIRE(x);
    std::vector<std::string> vars;
    for (const auto& f : x->children()) {
        vars.emplace_back(f.attr("var"));
    }
    CHECK(vars ==
          std::vector<std::string>{"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"});
}

TEST_CASE("mam stanza-id: spoofed ids of the archive are removed, others kept", "[mam]") {
    Element m = parse(
        "<message><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='Juliet@Capulet.LIT' id='fake'/>"
        "<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example' id='keep'/>"
        "<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.lit' id='fake2'/></message>");
    CHECK(removeStanzaIds(m, "juliet@capulet.lit") == 2);
    stampStanzaId(m, "juliet@capulet.lit", 0x77);
    CHECK(xmpp::toString(m, "jabber:client") ==
          "<message><body>x</body><stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example' id='keep'/>"
          "<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@capulet.lit' id='0000000000000077'/></message>");
}

TEST_CASE("mam prefs: parsing and the archiving decision", "[mam]") {
    auto parsed = parsePrefs(
        parse("<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>Romeo@Montague.lit</jid></always>"
              "<never><jid>montague@montague.lit</jid><jid>romeo@montague.lit/secret</jid></never></prefs>"));
    REQUIRE(std::holds_alternative<Prefs>(parsed));
    auto testling = std::get<Prefs>(parsed);
    CHECK(testling.mode == DefaultMode::Roster);
    CHECK(testling.always == std::vector<std::string>{"romeo@montague.lit"});
    CHECK(testling.never == std::vector<std::string>{"montague@montague.lit", "romeo@montague.lit/secret"});

    auto jid = [](const char* s) { return *xmpp::Jid::parse(s); };
    CHECK(shouldArchive(testling, jid("romeo@montague.lit/orchard")) == Archive::Yes);
    CHECK(shouldArchive(testling, jid("romeo@montague.lit/secret")) == Archive::No);  // never wins
    CHECK(shouldArchive(testling, jid("montague@montague.lit/x")) == Archive::No);
    CHECK(shouldArchive(testling, jid("nurse@capulet.lit")) == Archive::IfInRoster);  // XEP-0313 §7
    testling.mode = DefaultMode::Always;
    CHECK(shouldArchive(testling, jid("nurse@capulet.lit")) == Archive::Yes);
    testling.mode = DefaultMode::Never;
    CHECK(shouldArchive(testling, jid("nurse@capulet.lit")) == Archive::No);
    CHECK(shouldArchive(testling, jid("romeo@montague.lit")) == Archive::Yes);

    CHECK(
        xmpp::toString(renderPrefs(testling)) ==
        "<prefs xmlns='urn:xmpp:mam:2' default='never'><always><jid>romeo@montague.lit</jid></always><never>"
        "<jid>montague@montague.lit</jid><jid>romeo@montague.lit/secret</jid></never></prefs>");
    auto bad = [&](const char* xml) {
        auto r = parsePrefs(parse(xml));
        REQUIRE(std::holds_alternative<xmpp::StanzaError>(r));
        return std::get<xmpp::StanzaError>(r).condition;
    };
    CHECK(bad("<prefs xmlns='urn:xmpp:mam:2' default='sometimes'/>") == StanzaCondition::BadRequest);
    CHECK(bad("<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>@x</jid></always></prefs>") ==
          StanzaCondition::JidMalformed);
    CHECK(bad("<prefs xmlns='urn:xmpp:mam:2' default='always'><never><item/></never></prefs>") ==
          StanzaCondition::BadRequest);
}
