#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <unordered_set>

#include "xmpp/jid.hpp"

using xmpp::Jid;

namespace {

struct ValidCase {
    std::string input;
    std::string local;
    std::string domain;
    std::string resource;
};

}  // namespace

TEST_CASE("Jid::parse accepts valid addresses and normalises them", "[jid]") {
    // RFC 7622 §3.5 "Examples of valid JIDs" first, then normalisation cases.
    const std::vector<ValidCase> cases = {
        {"juliet@example.com", "juliet", "example.com", ""},
        {"juliet@example.com/foo", "juliet", "example.com", "foo"},
        {"juliet@example.com/foo bar", "juliet", "example.com", "foo bar"},
        {"juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar"},
        {"foo\\20bar@example.com", "foo\\20bar", "example.com", ""},
        {"fussball@example.com", "fussball", "example.com", ""},
        {"π@example.com", "π", "example.com", ""},
        {"Σ@example.com/foo", "σ", "example.com", "foo"},
        {"σ@example.com/foo", "σ", "example.com", "foo"},
        {"king@example.com/♚", "king", "example.com", "♚"},
        {"example.com", "", "example.com", ""},
        {"example.com/foobar", "", "example.com", "foobar"},
        {"a.example.com/b@example.net", "", "a.example.com", "b@example.net"},
        // Nodeprep case-folds and NFKC-normalises; PRECIS (RFC 7622) would keep "ß" and reject "Ⅳ",
        // and would also reject the symbol "♚" in a localpart. We assert what libidn really does.
        {"fußball@example.com", "fussball", "example.com", ""},
        {"henryⅣ@example.com", "henryiv", "example.com", ""},
        {"♚@example.com", "♚", "example.com", ""},
        // RFC 7622 lists a leading space in the resourcepart as invalid; Resourceprep accepts it.
        {"juliet@example.com/ foo", "juliet", "example.com", " foo"},
        // Case: localpart and domainpart fold, resourcepart is preserved.
        {"Juliet@Example.COM", "juliet", "example.com", ""},
        {"Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony"},
        // Resource takes everything after the first '/'.
        {"example.com/a/b", "", "example.com", "a/b"},
        {"juliet@example.com/a@b/c", "juliet", "example.com", "a@b/c"},
        // Trailing dot (RFC 7622 §3.2), also the ideographic full stop.
        {"juliet@example.com.", "juliet", "example.com", ""},
        {"example.com。", "", "example.com", ""},
        // IDNA: A-labels and U-labels normalise to the same (Unicode) form.
        {"juliet@Bücher.example", "juliet", "bücher.example", ""},
        {"juliet@xn--bcher-kva.example", "juliet", "bücher.example", ""},
        {"XN--BCHER-KVA.example", "", "bücher.example", ""},
        {"ＥＸＡＭＰＬＥ.com", "", "example.com", ""},
        {"localhost", "", "localhost", ""},
        // IP literals.
        {"juliet@192.168.0.1/x", "juliet", "192.168.0.1", "x"},
        {"[::1]", "", "[::1]", ""},
        {"juliet@[2001:DB8::1]/r", "juliet", "[2001:db8::1]", "r"},
        // Unassigned-in-Unicode-3.2 code points are allowed in resources (emoji device names).
        {"juliet@example.com/phone 😀", "juliet", "example.com", "phone 😀"},
        // NFKC turns NO-BREAK SPACE into SPACE before the prohibition check, so it survives in resources.
        {"juliet@example.com/foo\xC2\xA0"
         "bar",
         "juliet", "example.com", "foo bar"},
        // Characters mapped to nothing disappear (RFC 3454 table B.1).
        {"jul\xC2\xADiet@example.com", "juliet", "example.com", ""},
    };
    for (const auto& c : cases) {
        INFO("input: " << c.input);
        const auto jid = Jid::parse(c.input);
        REQUIRE(jid.has_value());
        CHECK(jid->local() == c.local);
        CHECK(jid->domain() == c.domain);
        CHECK(jid->resource() == c.resource);
        // Normalisation is idempotent: the printed form parses back to the same Jid.
        const auto again = Jid::parse(jid->str());
        REQUIRE(again.has_value());
        CHECK(*again == *jid);
    }
}

TEST_CASE("Jid::parse rejects invalid addresses", "[jid]") {
    const std::vector<std::string> cases = {
        // RFC 7622 §3.5 "Examples of invalid JIDs" that the Nodeprep approximation also rejects.
        "\"juliet\"@example.com", "foo bar@example.com", "@example.com/", "juliet@", "/foobar",
        // Empty parts.
        "", "@example.com", "example.com/", "juliet@example.com/", "juliet@/foo", "@", "/",
        // Domain syntax.
        "a@b@c", "juliet@example..com", "juliet@.example.com", "juliet@example.com..", "juliet@.",
        "juliet@ex ample.com", "juliet@ex_ample.com",
        "juliet@ex／ample.com",  // fullwidth solidus maps to '/', not to nothing
        "juliet@a＠b.com", "juliet@-example.com", "juliet@example-.com", "juliet@xn--zz.example",
        "juliet@" + std::string(64, 'a') + ".com", "juliet@[::1", "juliet@[example.com]", "juliet@[1.2.3.4]",
        "juliet@ex\xC3"
        "ample.com",  // truncated UTF-8 sequence
        // Localpart prohibitions (RFC 7622 §3.3.1 and Nodeprep).
        "jul:iet@example.com", "jul<iet@example.com", "jul>iet@example.com", "jul&iet@example.com",
        "jul'iet@example.com", "jul\x07iet@example.com",
        "jul\xC2\xA0iet@example.com",  // non-ASCII space
        "😀@example.com",               // unassigned in Unicode 3.2: refused in localparts
        "\xC2\xAD@example.com",        // maps to the empty string
        "jul\xFFiet@example.com",
        "jul\xC0\xAFiet@example.com",  // overlong '/'
        // Resourcepart prohibitions.
        "juliet@example.com/foo\x07",
        "juliet@example.com/\xED\xA0\x80",  // UTF-8 encoded surrogate
        "juliet@example.com/\xEF\xBF\xBF",  // non-character U+FFFF
    };
    for (const auto& c : cases) {
        INFO("input: " << c);
        CHECK_FALSE(Jid::parse(c).has_value());
    }
}

TEST_CASE("Jid::parse rejects embedded NUL bytes in every part", "[jid]") {
    using namespace std::string_literals;
    CHECK_FALSE(Jid::parse("jul\0iet@example.com"s).has_value());
    CHECK_FALSE(Jid::parse("juliet@exa\0mple.com"s).has_value());
    CHECK_FALSE(Jid::parse("juliet@example.com/re\0s"s).has_value());
    CHECK_FALSE(Jid::parse("juliet@[::1]\0"s).has_value());
}

TEST_CASE("Jid part length limits are 1023 bytes after preparation", "[jid]") {
    const std::string ok(1023, 'a');
    const std::string tooLong(1024, 'a');
    CHECK(Jid::parse(ok + "@example.com").has_value());
    CHECK_FALSE(Jid::parse(tooLong + "@example.com").has_value());
    CHECK(Jid::parse("example.com/" + ok).has_value());
    CHECK_FALSE(Jid::parse("example.com/" + tooLong).has_value());
    // Multi-byte characters count in bytes: 512 * "π" (2 bytes each) = 1024 bytes.
    std::string pis;
    for (int i = 0; i < 512; ++i) {
        pis += "π";
    }
    CHECK_FALSE(Jid::parse(pis + "@example.com").has_value());
    CHECK(Jid::parse(pis.substr(2) + "@example.com").has_value());
    // Upper case input folds to the same length, so 1023 'A' is fine too.
    CHECK(Jid::parse(std::string(1023, 'A') + "@example.com")->local() == ok);
    // Labels: 63 octets is the maximum.
    CHECK(Jid::parse(std::string(63, 'a') + ".com").has_value());
    CHECK_FALSE(Jid::parse(std::string(64, 'a') + ".com").has_value());
}

TEST_CASE("Jid accessors and derived forms", "[jid]") {
    const auto full = Jid::parse("Juliet@Example.com/Balcony");
    REQUIRE(full);
    CHECK(full->str() == "juliet@example.com/Balcony");
    CHECK(full->bareStr() == "juliet@example.com");
    CHECK_FALSE(full->isBare());
    CHECK_FALSE(full->empty());

    const Jid bare = full->bare();
    CHECK(bare.isBare());
    CHECK(bare.str() == "juliet@example.com");
    CHECK(bare.bareStr() == "juliet@example.com");
    CHECK(bare == *Jid::parse("juliet@example.com"));
    CHECK(bare != *full);

    const Jid other = full->withResource("Orchard");
    CHECK(other.str() == "juliet@example.com/Orchard");
    CHECK(other.bare() == bare);

    const auto domainOnly = Jid::parse("example.com/x");
    REQUIRE(domainOnly);
    CHECK(domainOnly->bareStr() == "example.com");
    CHECK(domainOnly->str() == "example.com/x");

    const Jid none;
    CHECK(none.empty());
    CHECK(none.str().empty());
}

TEST_CASE("Jid::fromParts validates and normalises each part", "[jid]") {
    const auto jid = Jid::fromParts("Juliet", "EXAMPLE.com", "Res");
    REQUIRE(jid);
    CHECK(jid->str() == "juliet@example.com/Res");
    CHECK(*jid == *Jid::parse("juliet@example.com/Res"));

    const auto domainOnly = Jid::fromParts("", "example.com");
    REQUIRE(domainOnly);
    CHECK(domainOnly->str() == "example.com");

    // Separators inside a part are data, not structure, and the localpart refuses them.
    CHECK_FALSE(Jid::fromParts("a@b", "example.com").has_value());
    CHECK_FALSE(Jid::fromParts("a/b", "example.com").has_value());
    CHECK(Jid::fromParts("a", "example.com", "x/y@z")->resource() == "x/y@z");
    CHECK_FALSE(Jid::fromParts("a", "").has_value());
    CHECK_FALSE(Jid::fromParts("a", "exa/mple.com").has_value());
}

TEST_CASE("Jid equality, ordering and hashing", "[jid]") {
    const Jid a = *Jid::parse("a@example.com/1");
    const Jid a2 = *Jid::parse("A@EXAMPLE.COM/1");
    const Jid b = *Jid::parse("b@example.com");
    const Jid c = *Jid::parse("example.com/a");  // parts differ in position only from "a@example.com"
    const Jid d = *Jid::parse("a@example.com");

    CHECK(a == a2);
    CHECK(std::hash<Jid>{}(a) == std::hash<Jid>{}(a2));
    CHECK(c != d);
    CHECK(std::hash<Jid>{}(c) != std::hash<Jid>{}(d));

    std::set<Jid> ordered{a, a2, b, c, d};
    CHECK(ordered.size() == 4);
    std::unordered_set<Jid> hashed{a, a2, b, c, d};
    CHECK(hashed.size() == 4);
    CHECK(((a < b) != (b < a)));
}

TEST_CASE("Part preparation functions", "[jid]") {
    CHECK(xmpp::prepLocalpart("User") == "user");
    CHECK_FALSE(xmpp::prepLocalpart("").has_value());
    CHECK_FALSE(xmpp::prepLocalpart("us er").has_value());
    CHECK(xmpp::prepResourcepart("Res Ource") == "Res Ource");
    CHECK_FALSE(xmpp::prepResourcepart("").has_value());
    CHECK(xmpp::prepDomainpart("Example.COM.") == "example.com");
    CHECK_FALSE(xmpp::prepDomainpart("").has_value());
    CHECK_FALSE(xmpp::prepDomainpart(".").has_value());
}

TEST_CASE("The ASCII fast path prepares parts exactly as libidn does", "[jid]") {
    // Every ASCII byte (controls included) at the start, middle and end of a part, plus shapes the
    // fast path treats specially: A-labels, hyphens at label edges and in positions 3-4, trailing
    // dots, IP literals, empty labels, upper case and over-long labels.
    std::vector<std::string> inputs = {"juliet",
                                       "Juliet",
                                       "example.com",
                                       "EXAMPLE.com.",
                                       "a.b.c",
                                       "a..b",
                                       ".a",
                                       "a.",
                                       "a..",
                                       "-a.com",
                                       "a-.com",
                                       "ab--c.com",
                                       "xn--bcher-kva.example",
                                       "XN--BCHER-KVA.example",
                                       "xn--a.com",
                                       "127.0.0.1",
                                       "1.2.3.4.5",
                                       "[::1]",
                                       "localhost",
                                       "a-b.c-d",
                                       "0",
                                       "12345",
                                       std::string(63, 'a') + ".com",
                                       std::string(64, 'a') + ".com",
                                       std::string(1023, 'a'),
                                       std::string(1024, 'a'),
                                       "res/with@odd:chars",
                                       "foo bar",
                                       " lead",
                                       "trail "};
    for (int c = 1; c < 128; ++c) {
        const char ch = static_cast<char>(c);
        inputs.push_back(std::string(1, ch));
        inputs.push_back(std::string(1, ch) + "ab");
        inputs.push_back("a" + std::string(1, ch) + "b");
        inputs.push_back("ab" + std::string(1, ch));
        inputs.push_back("ab" + std::string(1, ch) + ".example");
    }
    for (const auto& input : inputs) {
        INFO("input: '" << input << "'");
        CHECK(xmpp::prepLocalpart(input) == xmpp::detail::prepLocalpartLibrary(input));
        CHECK(xmpp::prepResourcepart(input) == xmpp::detail::prepResourcepartLibrary(input));
        CHECK(xmpp::prepDomainpart(input) == xmpp::detail::prepDomainpartLibrary(input));
    }
}
