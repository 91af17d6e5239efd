#include <catch2/catch.hpp>

#include "im_test_accounts.hpp"
#include "modules/common/stored_xml.hpp"
#include "modules/vcard/store.hpp"
#include "modules/vcard/vcard_data.hpp"
#include "tests/unit/storage/test_db.hpp"

using storage::test::TestDb;
using xmpp::Element;
using xmppd::modules::parseStored;
using xmppd::modules::serializeStored;
namespace store = xmppd::vcard::store;
namespace vcard = xmppd::vcard;

namespace {

Element parse(const std::string& xml) {
    auto e = parseStored(xml);
    REQUIRE(e);
    return *e;
}

}  // namespace

TEST_CASE("stored xml: round trip keeps namespaces, attributes and text", "[modules][vcard]") {
    std::string xml =
        "<vCard xmlns='vcard-temp'><FN>A &amp; B</FN><x xmlns='urn:other' a='1'><y/></x>"
        "<N><GIVEN>Al</GIVEN></N></vCard>";
    Element testling = parse(xml);
    CHECK(testling.is("vCard", "vcard-temp"));
    CHECK(testling.findChild("x", "urn:other")->attr("a") == "1");
    CHECK(serializeStored(testling) == xml);
}

TEST_CASE("stored xml: not exactly one element is refused", "[modules][vcard]") {
    CHECK_FALSE(parseStored(""));
    CHECK_FALSE(parseStored("<a xmlns='x'/><b xmlns='x'/>"));
    CHECK_FALSE(parseStored("<a xmlns='x'>"));
    CHECK_FALSE(parseStored("<!-- no --><a xmlns='x'/>"));
}

TEST_CASE("vcard: XEP-0153 photo hash of BINVAL, line breaks ignored", "[modules][vcard]") {
    // SHA-1("abc"), FIPS 180 test vector.
    Element card = parse(
        "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>YW\nJj</BINVAL></PHOTO></vCard>");
    CHECK(vcard::photoHash(card) == std::optional<std::string>("a9993e364706816aba3e25717850c26c9cd0d89d"));
    CHECK(vcard::photoHash(parse("<vCard xmlns='vcard-temp'><FN>x</FN></vCard>")) ==
          std::optional<std::string>(""));
    CHECK(vcard::photoHash(
              parse("<vCard xmlns='vcard-temp'><PHOTO><EXTVAL>http://x/</EXTVAL></PHOTO></vCard>")) ==
          std::optional<std::string>(""));
    // Missing padding is tolerated; non-base64 is not.
    CHECK(vcard::photoHash(parse("<vCard xmlns='vcard-temp'><PHOTO><BINVAL>YWI</BINVAL></PHOTO></vCard>")));
    CHECK_FALSE(
        vcard::photoHash(parse("<vCard xmlns='vcard-temp'><PHOTO><BINVAL>!!!!</BINVAL></PHOTO></vCard>")));
}

TEST_CASE("vcard: fields by name and one level down", "[modules][vcard]") {
    Element testling = parse("<vCard xmlns='vcard-temp'><FN>Juliet</FN><N><GIVEN>Jul</GIVEN></N></vCard>");
    CHECK(vcard::fieldText(testling, "FN") == "Juliet");
    CHECK(vcard::fieldText(testling, "fn") == "Juliet");
    CHECK(vcard::fieldText(testling, "N.GIVEN") == "Jul");
    CHECK(vcard::fieldText(testling, "NICKNAME").empty());

    CHECK(vcard::setField(testling, "NICKNAME", "jc"));
    CHECK(vcard::setField(testling, "n.family", "Capulet"));
    CHECK(vcard::setField(testling, "FN", "Juliet C."));
    CHECK(vcard::fieldText(testling, "NICKNAME") == "jc");
    CHECK(vcard::fieldText(testling, "N.FAMILY") == "Capulet");
    CHECK(vcard::fieldText(testling, "N.GIVEN") == "Jul");
    CHECK(vcard::fieldText(testling, "FN") == "Juliet C.");
    CHECK(testling.findChild("FN", "vcard-temp")->children().size() == 1);

    CHECK_FALSE(vcard::setField(testling, "", "x"));
    CHECK_FALSE(vcard::setField(testling, "A.B.C", "x"));
    CHECK_FALSE(vcard::setField(testling, "<FN>", "x"));
    CHECK_FALSE(vcard::setField(testling, "1X", "x"));
}

TEST_CASE("vcard: the server's avatar hash replaces the client's update element", "[modules][vcard]") {
    Element presence = parse(
        "<presence xmlns='jabber:client'><show>away</show><x "
        "xmlns='vcard-temp:x:update'><photo>old</photo></x>"
        "</presence>");
    vcard::applyAvatarUpdate(presence, "abc123");
    CHECK(serializeStored(presence) ==
          "<presence xmlns='jabber:client'><show>away</show><x "
          "xmlns='vcard-temp:x:update'><photo>abc123</photo></x>"
          "</presence>");
    vcard::applyAvatarUpdate(presence, "");
    CHECK(serializeStored(presence) ==
          "<presence xmlns='jabber:client'><show>away</show><x "
          "xmlns='vcard-temp:x:update'><photo/></x></presence>");
}

STORAGE_TEST_CASE("vcard store: set, get, hash, replace, empty removes", "[modules][vcard]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");

    auto found = store::get(*testling, "example.org", "alice");
    CHECK(found.account);
    CHECK_FALSE(found.vcard);
    CHECK_FALSE(store::photoHash(*testling, "example.org", "alice"));

    CHECK(
        store::set(*testling, "example.org", "alice", {"<vCard xmlns='vcard-temp'><FN>A</FN></vCard>", ""}));
    CHECK(store::set(*testling, "example.org", "alice",
                     {"<vCard xmlns='vcard-temp'><FN>B</FN></vCard>", "ff"}));
    found = store::get(*testling, "example.org", "alice");
    REQUIRE(found.vcard);
    CHECK(found.vcard->xml == "<vCard xmlns='vcard-temp'><FN>B</FN></vCard>");
    CHECK(store::photoHash(*testling, "example.org", "alice") == std::optional<std::string>("ff"));

    CHECK(store::set(*testling, "example.org", "alice", {"", ""}));
    CHECK_FALSE(store::get(*testling, "example.org", "alice").vcard);
}

STORAGE_TEST_CASE("vcard store: unknown account, hosts apart, removal, read-modify-write",
                  "[modules][vcard]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto testling = xmppd::test::migratedWith(db, store::migrations());
    xmppd::test::createAccount(*testling, "example.org", "alice");
    xmppd::test::createAccount(*testling, "example.com", "alice");

    CHECK_FALSE(store::get(*testling, "example.org", "bob").account);
    CHECK_FALSE(store::set(*testling, "example.org", "bob", {"<vCard xmlns='vcard-temp'/>", ""}));
    store::set(*testling, "example.org", "alice", {"<vCard xmlns='vcard-temp'><FN>org</FN></vCard>", ""});
    store::set(*testling, "example.com", "alice", {"<vCard xmlns='vcard-temp'><FN>com</FN></vCard>", ""});

    {
        storage::Transaction tx(*testling);
        auto current = store::getForUpdate(*testling, "example.com", "alice");
        REQUIRE(current.vcard);
        store::setInTransaction(*testling, "example.com", "alice",
                                {"<vCard xmlns='vcard-temp'><FN>com2</FN></vCard>", ""});
        tx.commit();
    }
    CHECK(store::get(*testling, "example.com", "alice").vcard->xml ==
          "<vCard xmlns='vcard-temp'><FN>com2</FN></vCard>");

    CHECK(store::removeUser(*testling, "example.org", "alice") == 1);
    CHECK_FALSE(store::get(*testling, "example.org", "alice").vcard);
    CHECK(store::get(*testling, "example.com", "alice").vcard);
}
