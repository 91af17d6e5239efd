#include "server/net/tls.hpp"

#include "server/net/tls_engine.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstring>
#include <stdexcept>

namespace xmppd {

namespace {

std::string opensslError() {
    unsigned long code = ERR_get_error();
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    ERR_clear_error();
    return buf;
}

// XEP-0368 §3: a direct-TLS client offers ALPN "xmpp-client". A client that
// offers other protocols only is told nothing (no ALPN) rather than refused.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void*) {
    static const unsigned char kXmppClient[] = "xmpp-client";
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen) {
            break;
        }
        if (len == sizeof kXmppClient - 1 && std::memcmp(in + i + 1, kXmppClient, len) == 0) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

// RFC 5929 §4.1: the certificate hashed with its signature's hash function,
// SHA-256 when that is MD5 or SHA-1 (or unknown).
std::string endPointHash(X509* cert) {
    if (!cert) {
        return {};
    }
    int mdNid = NID_sha256;
    int pkNid = 0;
    if (X509_get_signature_info(cert, &mdNid, &pkNid, nullptr, nullptr) != 1 || mdNid == NID_md5 ||
        mdNid == NID_sha1 || mdNid == NID_undef) {
        mdNid = NID_sha256;
    }
    const EVP_MD* md = EVP_get_digestbynid(mdNid);
    if (!md) {
        md = EVP_sha256();
    }
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, md, out, &len) != 1) {
        return {};
    }
    return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

void configureServerContext(ssl_ctx_st* ctx, const std::string& certFile, const std::string& keyFile) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    // Frees the per-connection read/write buffers whenever they are empty:
    // an idle session then costs no TLS buffer memory.
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx,
                                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) {
        throw std::runtime_error("cannot set TLS ciphers: " + opensslError());
    }
    // No session tickets: clients reconnect rarely, and each ticket costs a
    // round of crypto and bytes on every handshake.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_use_certificate_chain_file(ctx, certFile.c_str()) != 1) {
        throw std::runtime_error("tls.certfile " + certFile + ": " + opensslError());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
        throw std::runtime_error("tls.keyfile " + keyFile + ": " + opensslError());
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        throw std::runtime_error("tls.keyfile " + keyFile +
                                 " does not match tls.certfile: " + opensslError());
    }
}

std::unique_ptr<TlsContext> TlsContext::load(const std::string& certFile, const std::string& keyFile) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        throw std::runtime_error("cannot create TLS context: " + opensslError());
    }
    std::unique_ptr<TlsContext> result(new TlsContext(ctx));
    configureServerContext(ctx, certFile, keyFile);
    SSL_CTX_set_alpn_select_cb(ctx, &selectAlpn, nullptr);
    // The TLS 1.3 traffic secrets go to the connection's TlsEngine (never to
    // a file): it frees OpenSSL's state after the handshake and runs the
    // record layer itself with them.
    SSL_CTX_set_keylog_callback(ctx, &TlsEngine::keylogCallback);
    result->serverEndPoint_ = endPointHash(SSL_CTX_get0_certificate(ctx));
    return result;
}

TlsContext::~TlsContext() {
    SSL_CTX_free(ctx_);
}

}  // namespace xmppd
