// TlsEngine against a real OpenSSL client over memory BIOs: the handshake,
// the switch to the compact TLS 1.3 record layer, data both ways in every
// size and split, KeyUpdate, alerts, tampering, channel binding, TLS 1.2.
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <unistd.h>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <string>

#include "server/net/tls.hpp"
#include "server/net/tls_engine.hpp"

namespace {

using xmppd::TlsContext;
using xmppd::TlsEngine;

// A self-signed P-256 certificate, written once per test run.
const TlsContext& testContext() {
    static std::unique_ptr<TlsContext> ctx = [] {
        auto dir = std::filesystem::temp_directory_path() / ("xmppd-tls-test-" + std::to_string(getpid()));
        std::filesystem::create_directories(dir);
        EVP_PKEY* key = EVP_EC_gen("P-256");
        X509* cert = X509_new();
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, key);
        X509_NAME* name = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
        X509_set_issuer_name(cert, name);
        X509_sign(cert, key, EVP_sha256());
        auto certFile = (dir / "cert.pem").string();
        auto keyFile = (dir / "key.pem").string();
        FILE* f = std::fopen(certFile.c_str(), "w");
        PEM_write_X509(f, cert);
        std::fclose(f);
        f = std::fopen(keyFile.c_str(), "w");
        PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(f);
        X509_free(cert);
        EVP_PKEY_free(key);
        auto loaded = TlsContext::load(certFile, keyFile);
        std::filesystem::remove_all(dir);
        return loaded;
    }();
    return *ctx;
}

struct Collect final : TlsEngine::Sink {
    std::string plain;
    bool handshakeDone = false;
    bool onHandshakeDone() override {
        handshakeDone = true;
        return true;
    }
    bool onPlaintext(std::string_view bytes) override {
        plain.append(bytes);
        return true;
    }
};

// An OpenSSL client wired to a TlsEngine; pump() moves bytes both ways.
struct Pair {
    SSL_CTX* clientCtx;
    SSL* client;
    TlsEngine testling;
    Collect sink;
    TlsEngine::Result last = TlsEngine::Result::Ok;
    size_t split = 0;  // feed the server in pieces of this size (0: whole)

    explicit Pair(int maxVersion = 0, const char* suites = nullptr)
        : clientCtx(SSL_CTX_new(TLS_client_method())),
          client(nullptr),
          testling(const_cast<TlsContext&>(testContext())) {
        if (maxVersion) {
            SSL_CTX_set_max_proto_version(clientCtx, maxVersion);
        }
        if (suites) {
            SSL_CTX_set_ciphersuites(clientCtx, suites);
        }
        client = SSL_new(clientCtx);
        SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
        SSL_set_connect_state(client);
    }
    ~Pair() {
        SSL_free(client);
        SSL_CTX_free(clientCtx);
    }

    // Client output to the server; the server's output back to the client.
    void pump() {
        for (int round = 0; round < 20; ++round) {
            std::string c2s;
            char buf[65536];
            int n;
            while ((n = BIO_read(SSL_get_wbio(client), buf, sizeof buf)) > 0) {
                c2s.append(buf, static_cast<size_t>(n));
            }
            std::string s2c;
            if (!c2s.empty()) {
                size_t step = split ? split : c2s.size();
                for (size_t i = 0; i < c2s.size(); i += step) {
                    last = testling.feed(std::string_view(c2s).substr(i, step), s2c, sink);
                    if (last != TlsEngine::Result::Ok) {
                        break;
                    }
                }
            }
            if (!s2c.empty()) {
                BIO_write(SSL_get_rbio(client), s2c.data(), static_cast<int>(s2c.size()));
            }
            if (c2s.empty() && s2c.empty()) {
                return;
            }
            SSL_do_handshake(client);
        }
    }
    void handshake() {
        SSL_do_handshake(client);
        pump();
    }
    void clientSend(std::string_view text) {
        REQUIRE(SSL_write(client, text.data(), static_cast<int>(text.size())) ==
                static_cast<int>(text.size()));
        pump();
    }
    std::string serverSend(std::string_view text) {
        std::string out;
        REQUIRE(testling.write(text, out));
        BIO_write(SSL_get_rbio(client), out.data(), static_cast<int>(out.size()));
        std::string got;
        char buf[65536];
        int n;
        while ((n = SSL_read(client, buf, sizeof buf)) > 0) {
            got.append(buf, static_cast<size_t>(n));
        }
        pump();  // anything the read made the client send (KeyUpdate answers)
        return got;
    }
};

std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    }
    return s;
}

}  // namespace

TEST_CASE("TLS 1.3 handshake ends in the compact record layer", "[tls]") {
    Pair pair;
    pair.handshake();
    REQUIRE(SSL_is_init_finished(pair.client));
    CHECK(pair.sink.handshakeDone);
    CHECK(pair.testling.established());
    CHECK(pair.testling.compact());
    CHECK(pair.testling.version() == "TLSv1.3");
    pair.clientSend("<stream:stream>");
    CHECK(pair.sink.plain == "<stream:stream>");
    CHECK(pair.serverSend("<stream:features/>") == "<stream:features/>");
}

TEST_CASE("TLS data of every size crosses both ways intact", "[tls]") {
    for (size_t size :
         {size_t(1), size_t(100), size_t(16383), size_t(16384), size_t(16385), size_t(100000)}) {
        Pair pair;
        pair.handshake();
        REQUIRE(pair.testling.compact());
        std::string text = pattern(size);
        pair.clientSend(text);
        CHECK(pair.sink.plain == text);
        CHECK(pair.serverSend(text) == text);
    }
}

TEST_CASE("TLS records split at every byte boundary open the same", "[tls]") {
    Pair pair;
    pair.split = 1;
    pair.handshake();
    REQUIRE(pair.testling.compact());
    std::string text = pattern(3000);
    pair.clientSend(text);
    CHECK(pair.sink.plain == text);
    CHECK(pair.last == TlsEngine::Result::Ok);
}

TEST_CASE("TLS application data in the same flight as the client Finished is not lost", "[tls]") {
    Pair pair;
    SSL_do_handshake(pair.client);
    // Deliver the ServerHello flight, then write data before pumping the
    // client's Finished: both reach the server in one feed.
    std::string c2s, s2c;
    char buf[65536];
    int n = BIO_read(SSL_get_wbio(pair.client), buf, sizeof buf);
    REQUIRE(n > 0);
    pair.testling.feed(std::string_view(buf, static_cast<size_t>(n)), s2c, pair.sink);
    BIO_write(SSL_get_rbio(pair.client), s2c.data(), static_cast<int>(s2c.size()));
    REQUIRE(SSL_do_handshake(pair.client) == 1);
    REQUIRE(SSL_write(pair.client, "early words", 11) == 11);
    while ((n = BIO_read(SSL_get_wbio(pair.client), buf, sizeof buf)) > 0) {
        c2s.append(buf, static_cast<size_t>(n));
    }
    std::string out;
    CHECK(pair.testling.feed(c2s, out, pair.sink) == TlsEngine::Result::Ok);
    CHECK(pair.testling.compact());
    CHECK(pair.sink.plain == "early words");
}

TEST_CASE("TLS every suite we offer runs compact", "[tls]") {
    for (const char* suite :
         {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}) {
        Pair pair(0, suite);
        pair.handshake();
        REQUIRE(pair.testling.compact());
        CHECK(std::string(SSL_CIPHER_get_name(SSL_get_current_cipher(pair.client))) == suite);
        pair.clientSend("ping");
        CHECK(pair.sink.plain == "ping");
        CHECK(pair.serverSend("pong") == "pong");
    }
}

TEST_CASE("TLS KeyUpdate from the client, requested and not, RFC 8446 §4.6.3", "[tls]") {
    Pair pair;
    pair.handshake();
    REQUIRE(pair.testling.compact());
    REQUIRE(SSL_key_update(pair.client, SSL_KEY_UPDATE_REQUESTED) == 1);
    pair.clientSend("after update");
    CHECK(pair.sink.plain == "after update");
    // The server answered with its own KeyUpdate: the client still reads us.
    CHECK(pair.serverSend("still readable") == "still readable");
    REQUIRE(SSL_key_update(pair.client, SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    pair.clientSend(" and again");
    CHECK(pair.sink.plain == "after update and again");
    CHECK(pair.serverSend("ok") == "ok");
}

TEST_CASE("TLS close_notify from the client is a clean end", "[tls]") {
    Pair pair;
    pair.handshake();
    SSL_shutdown(pair.client);
    pair.pump();
    CHECK(pair.last == TlsEngine::Result::PeerClosed);
}

TEST_CASE("TLS server close_notify reaches the client", "[tls]") {
    Pair pair;
    pair.handshake();
    std::string out;
    pair.testling.close(out);
    BIO_write(SSL_get_rbio(pair.client), out.data(), static_cast<int>(out.size()));
    char buf[16];
    CHECK(SSL_read(pair.client, buf, sizeof buf) == 0);
    CHECK(SSL_get_error(pair.client, 0) == SSL_ERROR_ZERO_RETURN);
    std::string more;
    CHECK_FALSE(pair.testling.write("late", more));
}

TEST_CASE("TLS tampered record fails with bad_record_mac", "[tls]") {
    Pair pair;
    pair.handshake();
    REQUIRE(SSL_write(pair.client, "secret", 6) == 6);
    std::string c2s;
    char buf[4096];
    int n;
    while ((n = BIO_read(SSL_get_wbio(pair.client), buf, sizeof buf)) > 0) {
        c2s.append(buf, static_cast<size_t>(n));
    }
    c2s[8] ^= 1;
    std::string out;
    CHECK(pair.testling.feed(c2s, out, pair.sink) == TlsEngine::Result::Failed);
    CHECK(pair.sink.plain.empty());
    CHECK(pair.testling.error().find("authentication") != std::string::npos);
    // The alert is sealed: the client reads bad_record_mac (20).
    BIO_write(SSL_get_rbio(pair.client), out.data(), static_cast<int>(out.size()));
    ERR_clear_error();
    CHECK(SSL_read(pair.client, buf, sizeof buf) <= 0);
    CHECK(ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
}

TEST_CASE("TLS oversized and unprotected records are refused", "[tls]") {
    Pair pair;
    pair.handshake();
    std::string out;
    SECTION("record longer than 2^14 + 256") {
        std::string rec = {23, 3, 3, static_cast<char>(0x41), 1};
        CHECK(pair.testling.feed(rec, out, pair.sink) == TlsEngine::Result::Failed);
    }
    SECTION("change_cipher_spec after the handshake") {
        std::string rec = {20, 3, 3, 0, 1, 1};
        CHECK(pair.testling.feed(rec, out, pair.sink) == TlsEngine::Result::Failed);
    }
}

TEST_CASE("TLS channel binding matches what the client computes", "[tls]") {
    Pair pair;
    pair.handshake();
    REQUIRE(pair.testling.compact());
    unsigned char expected[32];
    static const char kLabel[] = "EXPORTER-Channel-Binding";
    REQUIRE(SSL_export_keying_material(pair.client, expected, sizeof expected, kLabel, sizeof kLabel - 1,
                                       nullptr, 0, 0) == 1);
    CHECK(pair.testling.channelBinding("tls-exporter") ==
          std::string(reinterpret_cast<char*>(expected), sizeof expected));
    X509* peer = SSL_get1_peer_certificate(pair.client);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    X509_digest(peer, EVP_sha256(), digest, &len);
    X509_free(peer);
    CHECK(pair.testling.channelBinding("tls-server-end-point") ==
          std::string(reinterpret_cast<char*>(digest), len));
    CHECK(pair.testling.channelBinding("tls-unique").empty());
}

TEST_CASE("TLS 1.2 keeps OpenSSL's record layer and works", "[tls]") {
    Pair pair(TLS1_2_VERSION);
    pair.handshake();
    REQUIRE(pair.testling.established());
    CHECK_FALSE(pair.testling.compact());
    CHECK(pair.testling.version() == "TLSv1.2");
    CHECK(pair.testling.channelBinding("tls-exporter").empty());
    CHECK_FALSE(pair.testling.channelBinding("tls-server-end-point").empty());
    std::string text = pattern(40000);
    pair.clientSend(text);
    CHECK(pair.sink.plain == text);
    CHECK(pair.serverSend(text) == text);
}

TEST_CASE("TLS garbage instead of a ClientHello fails the handshake", "[tls]") {
    Pair pair;
    std::string out;
    CHECK(pair.testling.feed("<stream:stream to='localhost'>", out, pair.sink) == TlsEngine::Result::Failed);
    CHECK(pair.testling.error().find("handshake") != std::string::npos);
    CHECK_FALSE(pair.sink.handshakeDone);
}
