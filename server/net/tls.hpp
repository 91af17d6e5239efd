#pragma once

#include <memory>
#include <string>

struct ssl_ctx_st;

namespace xmppd {

// The server's TLS settings (RFC 7590): TLS 1.2 or newer, forward-secret
// AEAD suites only, ALPN "xmpp-client" for direct TLS (XEP-0368), buffers
// released while a connection is idle.
// What every server-side TLS context here shares (TLS 1.2 or newer, the
// AEAD suites below, no renegotiation, compression or session resumption)
// plus the certificate chain and key. Throws std::runtime_error naming the
// file and OpenSSL's reason. TlsContext::load uses it; so does the HTTPS
// listener for its own context.
void configureServerContext(ssl_ctx_st* ctx, const std::string& certFile, const std::string& keyFile);

class TlsContext {
  public:
    // Throws std::runtime_error naming the file and OpenSSL's reason.
    static std::unique_ptr<TlsContext> load(const std::string& certFile, const std::string& keyFile);
    ~TlsContext();
    ssl_ctx_st* native() const { return ctx_; }
    // RFC 5929 §4.1 tls-server-end-point: the hash of our certificate.
    const std::string& serverEndPoint() const { return serverEndPoint_; }

  private:
    explicit TlsContext(ssl_ctx_st* ctx) : ctx_(ctx) {}
    ssl_ctx_st* ctx_;
    std::string serverEndPoint_;
};

}  // namespace xmppd
