#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "xmpp/sasl/crypto.hpp"
#include "xmpp/sasl/plain.hpp"
#include "xmpp/sasl/scram.hpp"

using namespace xmpp::sasl;

namespace {

std::string toHex(std::string_view bytes) {
    static const char* kDigits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out.push_back(kDigits[c >> 4]);
        out.push_back(kDigits[c & 0x0f]);
    }
    return out;
}

std::string b64d(std::string_view text) {
    auto decoded = base64Decode(text);
    REQUIRE(decoded.has_value());
    return *decoded;
}

template <typename T>
bool isFailure(const std::variant<std::string, SaslFailure>& result, T expected) {
    return std::holds_alternative<SaslFailure>(result) && std::get<SaslFailure>(result) == expected;
}

std::string okValue(const std::variant<std::string, SaslFailure>& result) {
    REQUIRE(std::holds_alternative<std::string>(result));
    return std::get<std::string>(result);
}

// Independent client-side computation (RFC 5802 §3), so that tests can build valid and invalid
// client-final messages for any exchange.
std::string clientFinalFor(ScramHash h, std::string_view password, std::string_view clientFirstBare,
                           std::string_view serverFirst, std::string_view channelBindingInput,
                           std::string_view extensions = {}) {
    const auto rPos = serverFirst.find("r=");
    const auto sPos = serverFirst.find(",s=");
    const auto iPos = serverFirst.find(",i=");
    REQUIRE(rPos == 0);
    REQUIRE(sPos != std::string_view::npos);
    REQUIRE(iPos != std::string_view::npos);
    const std::string nonce(serverFirst.substr(2, sPos - 2));
    const std::string salt = b64d(serverFirst.substr(sPos + 3, iPos - sPos - 3));
    const auto iterations = static_cast<std::uint32_t>(std::stoul(std::string(serverFirst.substr(iPos + 3))));

    std::string withoutProof = "c=" + base64Encode(channelBindingInput) + ",r=" + nonce;
    if (!extensions.empty()) {
        withoutProof += ",";
        withoutProof += extensions;
    }
    const std::string authMessage =
        std::string(clientFirstBare) + "," + std::string(serverFirst) + "," + withoutProof;
    const std::string salted = pbkdf2(h, password, salt, iterations);
    const std::string clientKey = hmac(h, salted, "Client Key");
    const std::string signature = hmac(h, hash(h, clientKey), authMessage);
    std::string proof = clientKey;
    for (std::size_t i = 0; i < proof.size(); ++i) {
        proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    }
    return withoutProof + ",p=" + base64Encode(proof);
}

ScramCredentials userCredentials(ScramHash h, std::string_view password = "pencil") {
    return deriveScramCredentials(h, password, "0123456789abcdef", kDefaultScramIterations);
}

}  // namespace

TEST_CASE("crypto primitives match published test vectors", "[sasl][crypto]") {
    CHECK(toHex(hash(ScramHash::Sha1, "abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(toHex(hash(ScramHash::Sha256, "abc")) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    // RFC 2202 test case 2 / RFC 4231 test case 2.
    CHECK(toHex(hmac(ScramHash::Sha1, "Jefe", "what do ya want for nothing?")) ==
          "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    CHECK(toHex(hmac(ScramHash::Sha256, "Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // RFC 6070 test vectors 1 and 2.
    CHECK(toHex(pbkdf2(ScramHash::Sha1, "password", "salt", 1)) ==
          "0c60c80f961f0e71f3a9b524af6012062fe037a6");
    CHECK(toHex(pbkdf2(ScramHash::Sha1, "password", "salt", 2)) ==
          "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957");
    CHECK_THROWS_AS(pbkdf2(ScramHash::Sha1, "password", "salt", 0), std::invalid_argument);
    CHECK(digestSize(ScramHash::Sha1) == 20);
    CHECK(digestSize(ScramHash::Sha256) == 32);

    CHECK(constantTimeEqual("abc", "abc"));
    CHECK(constantTimeEqual("", ""));
    CHECK_FALSE(constantTimeEqual("abc", "abd"));
    CHECK_FALSE(constantTimeEqual("abc", "abcd"));

    const std::string r1 = randomBytes(24);
    const std::string r2 = randomBytes(24);
    CHECK(r1.size() == 24);
    CHECK(r1 != r2);
    CHECK(randomBytes(0).empty());
}

TEST_CASE("base64 round trips RFC 4648 vectors", "[sasl][crypto]") {
    const std::vector<std::pair<std::string, std::string>> vectors = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        INFO(encoded);
        CHECK(base64Encode(plain) == encoded);
        CHECK(base64Decode(encoded) == plain);
    }
    const std::string binary("\x00\xff\xfe\x80\x01", 5);
    CHECK(base64Decode(base64Encode(binary)) == binary);
}

TEST_CASE("base64Decode is strict", "[sasl][crypto]") {
    const std::vector<std::string> bad = {
        "Zg",
        "Zg=",
        "Z===",
        "====",
        "Zh==",  // non-zero unused bits
        "Zm9=",
        "Zm9v\n",
        "Zm 9v",
        "Zm9v====",
        "=Zg=",
        "Zg==Zg==",
        "Zm-v",
        "Zm_v",
        "Zm9v*A==",
        "Zg=A",
        std::string("Zm\0v", 4),
    };
    for (const auto& text : bad) {
        INFO(text);
        CHECK_FALSE(base64Decode(text).has_value());
    }
}

TEST_CASE("SCRAM-SHA-1 RFC 5802 §5 test vector", "[sasl][scram]") {
    const auto credentials =
        deriveScramCredentials(ScramHash::Sha1, "pencil", b64d("QSXCR+Q6sek8bf92"), 4096);
    ScramServer server(ScramHash::Sha1, "", "", false);
    server.setServerNonceForTest("3rfcNHYJY1ZVvWVs7j");

    CHECK(okValue(server.clientFirst("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL")) == "user");
    CHECK(server.authzid().empty());
    CHECK(server.serverFirst(credentials) ==
          "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096");
    CHECK(okValue(server.clientFinal(
              "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")) ==
          "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
    // A finished exchange cannot be continued.
    CHECK(isFailure(server.clientFinal(
                        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="),
                    SaslFailure::MalformedRequest));
}

TEST_CASE("SCRAM-SHA-256 RFC 7677 §3 test vector", "[sasl][scram]") {
    const auto credentials =
        deriveScramCredentials(ScramHash::Sha256, "pencil", b64d("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
    ScramServer server(ScramHash::Sha256, "", "", false);
    server.setServerNonceForTest("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");

    CHECK(okValue(server.clientFirst("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")) == "user");
    CHECK(server.serverFirst(credentials) ==
          "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
    CHECK(okValue(server.clientFinal("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")) ==
          "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

TEST_CASE("SCRAM test client agrees with the RFC 5802 proof", "[sasl][scram]") {
    // Guards the helper used by the negative tests below.
    CHECK(clientFinalFor(ScramHash::Sha1, "pencil", "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                         "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096", "n,,") ==
          "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
}

TEST_CASE("SCRAM rejects a wrong password and a tampered nonce", "[sasl][scram]") {
    for (const auto h : {ScramHash::Sha1, ScramHash::Sha256}) {
        const auto credentials = userCredentials(h);
        {
            ScramServer server(h, "", "", false);
            REQUIRE(okValue(server.clientFirst("n,,n=user,r=abcdef")) == "user");
            const std::string serverFirst = server.serverFirst(credentials);
            CHECK(isFailure(
                server.clientFinal(clientFinalFor(h, "pencil2", "n=user,r=abcdef", serverFirst, "n,,")),
                SaslFailure::NotAuthorized));
        }
        {
            ScramServer server(h, "", "", false);
            REQUIRE(okValue(server.clientFirst("n,,n=user,r=abcdef")) == "user");
            const std::string serverFirst = server.serverFirst(credentials);
            // The client replaces the server's part of the nonce (a replay would look like this).
            std::string tampered = serverFirst;
            tampered.replace(tampered.find(",s=") - 1, 1, "!");
            CHECK(
                isFailure(server.clientFinal(clientFinalFor(h, "pencil", "n=user,r=abcdef", tampered, "n,,")),
                          SaslFailure::NotAuthorized));
        }
        {
            // Sanity: the same exchange with the right password succeeds, including an ignored
            // extension in client-final that is covered by the proof.
            ScramServer server(h, "", "", false);
            REQUIRE(okValue(server.clientFirst("n,,n=user,r=abcdef,x=ext")) == "user");
            const std::string serverFirst = server.serverFirst(credentials);
            CHECK(serverFirst.starts_with("r=abcdef"));
            const auto result = server.clientFinal(
                clientFinalFor(h, "pencil", "n=user,r=abcdef,x=ext", serverFirst, "n,,", "x=whatever"));
            CHECK(okValue(result).starts_with("v="));
        }
    }
}

TEST_CASE("SCRAM server nonce is 24 random bytes in base64", "[sasl][scram]") {
    ScramServer a(ScramHash::Sha256, "", "", false);
    ScramServer b(ScramHash::Sha256, "", "", false);
    REQUIRE(okValue(a.clientFirst("n,,n=user,r=cn")) == "user");
    REQUIRE(okValue(b.clientFirst("n,,n=user,r=cn")) == "user");
    const std::string fa = a.serverFirst(userCredentials(ScramHash::Sha256));
    const std::string fb = b.serverFirst(userCredentials(ScramHash::Sha256));
    const std::string nonceA = fa.substr(2, fa.find(",s=") - 2);
    const std::string nonceB = fb.substr(2, fb.find(",s=") - 2);
    CHECK(nonceA.size() == 2 + 32);
    CHECK(b64d(nonceA.substr(2)).size() == 24);
    CHECK(nonceA != nonceB);
}

TEST_CASE("SCRAM gs2 header and channel binding rules", "[sasl][scram]") {
    const auto h = ScramHash::Sha256;
    const auto credentials = userCredentials(h);
    const std::string cbData = "\x01\x02\x03 tls exporter bytes";

    SECTION("PLUS exchange with matching binding data succeeds") {
        ScramServer server(h, "tls-exporter", cbData, true);
        REQUIRE(okValue(server.clientFirst("p=tls-exporter,,n=user,r=abc")) == "user");
        const std::string serverFirst = server.serverFirst(credentials);
        const auto result = server.clientFinal(
            clientFinalFor(h, "pencil", "n=user,r=abc", serverFirst, "p=tls-exporter,," + cbData));
        CHECK(okValue(result).starts_with("v="));
    }
    SECTION("PLUS exchange with different binding data fails") {
        ScramServer server(h, "tls-exporter", cbData, true);
        REQUIRE(okValue(server.clientFirst("p=tls-exporter,,n=user,r=abc")) == "user");
        const std::string serverFirst = server.serverFirst(credentials);
        // A man in the middle terminating TLS sees different binding data than the server.
        CHECK(isFailure(server.clientFinal(clientFinalFor(h, "pencil", "n=user,r=abc", serverFirst,
                                                          "p=tls-exporter,,other connection")),
                        SaslFailure::NotAuthorized));
    }
    SECTION("PLUS exchange with the binding data omitted from c= fails") {
        ScramServer server(h, "tls-server-end-point", cbData, true);
        REQUIRE(okValue(server.clientFirst("p=tls-server-end-point,,n=user,r=abc")) == "user");
        const std::string serverFirst = server.serverFirst(credentials);
        CHECK(isFailure(server.clientFinal(clientFinalFor(h, "pencil", "n=user,r=abc", serverFirst,
                                                          "p=tls-server-end-point,,")),
                        SaslFailure::NotAuthorized));
    }
    SECTION("c= must repeat the gs2 header of client-first") {
        ScramServer server(h, "", "", false);
        REQUIRE(okValue(server.clientFirst("n,a=admin@example.com,n=user,r=abc")) == "user");
        CHECK(server.authzid() == "admin@example.com");
        const std::string serverFirst = server.serverFirst(credentials);
        CHECK(isFailure(server.clientFinal(clientFinalFor(h, "pencil", "n=user,r=abc", serverFirst, "n,,")),
                        SaslFailure::NotAuthorized));
    }
    SECTION("c= with the authzid succeeds") {
        ScramServer server(h, "", "", false);
        REQUIRE(okValue(server.clientFirst("n,a=ad=2Cmin=3D,n=user,r=abc")) == "user");
        CHECK(server.authzid() == "ad,min=");
        const std::string serverFirst = server.serverFirst(credentials);
        const auto result =
            server.clientFinal(clientFinalFor(h, "pencil", "n=user,r=abc", serverFirst, "n,a=ad=2Cmin=3D,"));
        CHECK(okValue(result).starts_with("v="));
    }
    SECTION("'y' is a downgrade when the server offered PLUS") {
        ScramServer server(h, "", "", true);
        CHECK(isFailure(server.clientFirst("y,,n=user,r=abc"), SaslFailure::NotAuthorized));
    }
    SECTION("'y' is fine when the server did not offer PLUS") {
        ScramServer server(h, "", "", false);
        REQUIRE(okValue(server.clientFirst("y,,n=user,r=abc")) == "user");
        const std::string serverFirst = server.serverFirst(credentials);
        CHECK(okValue(server.clientFinal(clientFinalFor(h, "pencil", "n=user,r=abc", serverFirst, "y,,")))
                  .starts_with("v="));
    }
    SECTION("'n' with a non-PLUS mechanism is fine even when PLUS is offered") {
        ScramServer server(h, "", "", true);
        CHECK(okValue(server.clientFirst("n,,n=user,r=abc")) == "user");
    }
    SECTION("p= is refused on a non-PLUS mechanism") {
        ScramServer server(h, "", cbData, true);
        CHECK(isFailure(server.clientFirst("p=tls-exporter,,n=user,r=abc"), SaslFailure::MalformedRequest));
    }
    SECTION("PLUS mechanism refuses n and y") {
        ScramServer n(h, "tls-exporter", cbData, true);
        CHECK(isFailure(n.clientFirst("n,,n=user,r=abc"), SaslFailure::MalformedRequest));
        ScramServer y(h, "tls-exporter", cbData, true);
        CHECK(isFailure(y.clientFirst("y,,n=user,r=abc"), SaslFailure::MalformedRequest));
    }
    SECTION("PLUS mechanism refuses a different channel binding type") {
        ScramServer server(h, "tls-exporter", cbData, true);
        CHECK(isFailure(server.clientFirst("p=tls-unique,,n=user,r=abc"), SaslFailure::MalformedRequest));
    }
    SECTION("PLUS mechanism without binding data fails closed") {
        ScramServer server(h, "tls-exporter", "", true);
        CHECK(isFailure(server.clientFirst("p=tls-exporter,,n=user,r=abc"), SaslFailure::NotAuthorized));
    }
}

TEST_CASE("SCRAM with an unknown user continues and fails at the end", "[sasl][scram]") {
    const auto h = ScramHash::Sha256;
    ScramServer::setUnknownUserSaltKey("test key for simulated salts");
    auto run = [&](const std::string& user, const std::optional<ScramCredentials>& credentials) {
        ScramServer server(h, "", "", false);
        server.setServerNonceForTest("servernonce");
        REQUIRE(okValue(server.clientFirst("n,,n=" + user + ",r=abc")) == user);
        const std::string serverFirst = server.serverFirst(credentials);
        const auto result =
            server.clientFinal(clientFinalFor(h, "pencil", "n=" + user + ",r=abc", serverFirst, "n,,"));
        return std::make_pair(serverFirst, result);
    };
    const auto [first1, result1] = run("ghost", std::nullopt);
    const auto [first2, result2] = run("ghost", std::nullopt);
    const auto [first3, result3] = run("phantom", std::nullopt);
    CHECK(first1 == first2);  // stable salt, like a real account
    CHECK(first1 != first3);
    CHECK(first1.ends_with(",i=4096"));
    CHECK(b64d(first1.substr(first1.find(",s=") + 3, first1.find(",i=") - first1.find(",s=") - 3)).size() ==
          kDefaultScramSaltBytes);
    CHECK(isFailure(result1, SaslFailure::NotAuthorized));
    CHECK(isFailure(result3, SaslFailure::NotAuthorized));

    // Credentials that cannot be used (corrupt record) look the same on the wire but report a
    // temporary failure.
    ScramCredentials broken = userCredentials(h);
    broken.storedKey.resize(5);
    const auto [first4, result4] = run("ghost", broken);
    CHECK(first4 == first1);
    CHECK(isFailure(result4, SaslFailure::TemporaryAuthFailure));
}

TEST_CASE("SCRAM rejects malformed client-first messages", "[sasl][scram]") {
    const std::vector<std::string> bad = {
        "",
        "n",
        "n,",
        "n,,",
        "x,,n=user,r=abc",
        "N,,n=user,r=abc",
        "n,,r=abc,n=user",        // wrong order
        "n,,n=user",              // no nonce
        "n,,n=,r=abc",            // empty username
        "n,,n=user,r=",           // empty nonce
        "n,,n=us=2cer,r=abc",     // escapes are upper case
        "n,,n=us=er,r=abc",       // bare '='
        "n,,n=user=,r=abc",       // truncated escape
        "n,,m=foo,n=user,r=abc",  // mandatory extension
        "n,,n=user,r=abc,m=foo",
        "n,,n=user,r=ab c",  // nonce must be printable
        "n,,n=user,r=abc,",  // trailing empty attribute
        "n,,n=user,,r=abc",
        "n,,n=user,r=abc,1=x",  // attribute names are letters
        "n,a=,n=user,r=abc",    // empty authzid
        "n,b=x,n=user,r=abc",
        "n,a=x",
        "p=,,n=user,r=abc",
        "p=tls exporter,,n=user,r=abc",
        "n,,n=us\xFFr,r=abc",   // invalid UTF-8
        "n,,n=us\x07r,r=abc",   // SASLprep prohibits control characters
        "n,,n=\xC2\xAD,r=abc",  // prepares to the empty string
        std::string("n,,n=us\0r,r=abc", 15),
        "n,,n=user,r=" + std::string(9000, 'a'),
    };
    for (const auto& message : bad) {
        INFO(message);
        ScramServer server(ScramHash::Sha256, "", "", false);
        CHECK(isFailure(server.clientFirst(message), SaslFailure::MalformedRequest));
    }
}

TEST_CASE("SCRAM username and authzid decoding", "[sasl][scram]") {
    ScramServer escaped(ScramHash::Sha1, "", "", false);
    CHECK(okValue(escaped.clientFirst("n,,n=a=2Cb=3Dc,r=abc")) == "a,b=c");
    // SASLprep (RFC 4013 §3 examples): soft hyphen is removed, U+2168 becomes "IX". Case is kept.
    ScramServer prepped(ScramHash::Sha1, "", "", false);
    CHECK(okValue(prepped.clientFirst("n,,n=I\xC2\xADX,r=abc")) == "IX");
    ScramServer roman(ScramHash::Sha1, "", "", false);
    CHECK(okValue(roman.clientFirst("n,,n=\xE2\x85\xA8,r=abc")) == "IX");
    ScramServer upper(ScramHash::Sha1, "", "", false);
    CHECK(okValue(upper.clientFirst("n,,n=User,r=abc")) == "User");
}

TEST_CASE("SCRAM rejects malformed client-final messages", "[sasl][scram]") {
    const auto h = ScramHash::Sha1;
    const auto credentials = userCredentials(h);
    auto start = [&](ScramServer& server) {
        server.setServerNonceForTest("srv");
        REQUIRE(okValue(server.clientFirst("n,,n=user,r=cli")) == "user");
        return server.serverFirst(credentials);
    };
    const std::string validProof = "p=" + base64Encode(std::string(20, 'x'));
    const std::vector<std::pair<std::string, SaslFailure>> cases = {
        {"", SaslFailure::MalformedRequest},
        {"c=biws,r=clisrv", SaslFailure::MalformedRequest},                             // no proof
        {"r=clisrv,c=biws," + validProof, SaslFailure::MalformedRequest},               // wrong order
        {"c=biws,r=clisrv,p=!!!!", SaslFailure::MalformedRequest},                      // proof not base64
        {"c=biws,r=clisrv,p=" + base64Encode("short"), SaslFailure::MalformedRequest},  // wrong length
        {"c=bi ws,r=clisrv," + validProof, SaslFailure::MalformedRequest},              // c not base64
        {"c=biws,r=clisrv,m=x," + validProof, SaslFailure::MalformedRequest},
        {"c=biws,r=clisrv,p=abcd," + validProof, SaslFailure::MalformedRequest},  // repeated p
        {"c=biws,r=clisrv,," + validProof, SaslFailure::MalformedRequest},
        {"c=eSws,r=clisrv," + validProof, SaslFailure::NotAuthorized},  // "y,," != "n,,"
        {"c=biws,r=cli," + validProof, SaslFailure::NotAuthorized},     // server nonce dropped
        {"c=biws,r=clisrvx," + validProof, SaslFailure::NotAuthorized},
        {"c=biws,r=clisrv," + validProof, SaslFailure::NotAuthorized},  // wrong proof
    };
    for (const auto& [message, expected] : cases) {
        INFO(message);
        ScramServer server(h, "", "", false);
        start(server);
        CHECK(isFailure(server.clientFinal(message), expected));
    }
}

TEST_CASE("SCRAM steps must come in order", "[sasl][scram]") {
    ScramServer early(ScramHash::Sha256, "", "", false);
    CHECK_THROWS_AS(early.serverFirst(std::nullopt), std::logic_error);

    ScramServer skip(ScramHash::Sha256, "", "", false);
    REQUIRE(okValue(skip.clientFirst("n,,n=user,r=abc")) == "user");
    CHECK(isFailure(skip.clientFinal("c=biws,r=abc,p=" + base64Encode(std::string(32, 'x'))),
                    SaslFailure::MalformedRequest));

    ScramServer twice(ScramHash::Sha256, "", "", false);
    REQUIRE(okValue(twice.clientFirst("n,,n=user,r=abc")) == "user");
    CHECK(isFailure(twice.clientFirst("n,,n=user,r=abc"), SaslFailure::MalformedRequest));

    ScramServer failed(ScramHash::Sha256, "", "", false);
    REQUIRE(isFailure(failed.clientFirst("bogus"), SaslFailure::MalformedRequest));
    CHECK_THROWS_AS(failed.serverFirst(std::nullopt), std::logic_error);
}

TEST_CASE("saslPrep follows RFC 4013", "[sasl]") {
    CHECK(saslPrep("user") == "user");
    CHECK(saslPrep("I\xC2\xADX") == "IX");    // soft hyphen mapped to nothing
    CHECK(saslPrep("\xC2\xAA") == "a");       // NFKC
    CHECK(saslPrep("\xE2\x85\xA8") == "IX");  // NFKC
    CHECK(saslPrep("a\xC2\xA0"
                   "b") == "a b");              // non-ASCII space mapped to SPACE
    CHECK_FALSE(saslPrep("\x07").has_value());  // prohibited control character
    CHECK_FALSE(saslPrep("\xD8\xA7"
                         "1")
                    .has_value());  // RFC 3454 §6 bidi rule
    CHECK_FALSE(saslPrep("").has_value());
    CHECK_FALSE(saslPrep("\xC2\xAD").has_value());
    CHECK_FALSE(saslPrep("\xFF").has_value());
    CHECK(saslPrep("pass \xF0\x9F\x98\x80") == "pass \xF0\x9F\x98\x80");  // unassigned in 3.2: kept
}

TEST_CASE("isValidUtf8", "[sasl]") {
    CHECK(isValidUtf8(""));
    CHECK(isValidUtf8("plain"));
    CHECK(isValidUtf8("π😀"));
    CHECK_FALSE(isValidUtf8("\xC0\xAF"));          // overlong
    CHECK_FALSE(isValidUtf8("\xED\xA0\x80"));      // surrogate
    CHECK_FALSE(isValidUtf8("\xF4\x90\x80\x80"));  // above U+10FFFF
    CHECK_FALSE(isValidUtf8("\xE2\x82"));          // truncated
    CHECK_FALSE(isValidUtf8("\x80"));
}

TEST_CASE("PLAIN message parsing", "[sasl][plain]") {
    using namespace std::string_literals;
    {
        const auto c = parsePlain("\0user\0pencil"s);
        REQUIRE(c);
        CHECK(c->authzid.empty());
        CHECK(c->authcid == "user");
        CHECK(c->password == "pencil");
    }
    {
        const auto c = parsePlain("admin@example.com\0user\0pencil"s);
        REQUIRE(c);
        CHECK(c->authzid == "admin@example.com");
        CHECK(c->authcid == "user");
    }
    {
        const auto c = parsePlain(
            "\0I\xC2\xADX\0a\xC2\xA0"
            "b"s);
        REQUIRE(c);
        CHECK(c->authcid == "IX");
        CHECK(c->password == "a b");
    }
    const std::vector<std::string> bad = {
        ""s,
        "user"s,
        "\0user"s,
        "user\0pencil"s,
        "\0\0pencil"s,
        "\0user\0"s,
        "\0\0"s,
        "\0user\0pen\0cil"s,
        "\0user\0\xC2\xAD"s,
        "\0user\0pen\x07"s,
        "\0us\xFF\0pencil"s,
        "\xFF\0user\0pencil"s,
        "\0user\0"s + std::string(1024, 'p'),
    };
    for (const auto& message : bad) {
        INFO(message);
        CHECK_FALSE(parsePlain(message).has_value());
    }
}

TEST_CASE("SCRAM checks a proof against each alternate key of the account", "[sasl][scram]") {
    for (const auto h : {ScramHash::Sha1, ScramHash::Sha256}) {
        auto credentials = userCredentials(h);  // "pencil"
        for (const char* key : {"phone-key", "tablet-key"}) {
            auto derived = deriveScramCredentials(h, key, credentials.salt, credentials.iterations);
            credentials.alternates.push_back(
                {std::string(key) + "-id", derived.storedKey, derived.serverKey});
        }
        auto attempt = [&](std::string_view password) {
            ScramServer testling(h, "", "", false);
            REQUIRE(okValue(testling.clientFirst("n,,n=user,r=abcdef")) == "user");
            const std::string serverFirst = testling.serverFirst(credentials);
            auto result =
                testling.clientFinal(clientFinalFor(h, password, "n=user,r=abcdef", serverFirst, "n,,"));
            return std::make_pair(result, testling.matchedKey());
        };
        auto [tablet, tabletId] = attempt("tablet-key");
        CHECK(okValue(tablet).starts_with("v="));
        CHECK(tabletId == "tablet-key-id");
        auto [own, ownId] = attempt("pencil");
        CHECK(okValue(own).starts_with("v="));
        CHECK(ownId.empty());
        auto [wrong, wrongId] = attempt("laptop-key");
        CHECK(isFailure(wrong, SaslFailure::NotAuthorized));
        CHECK(wrongId.empty());
    }
}
