#pragma once

#include <memory>
#include <string>
#include <string_view>

struct ssl_st;
struct bio_st;

namespace xmppd {

class TlsContext;
struct Tls13Records;

// The server side of one TLS connection, without a socket: ciphertext in,
// plaintext out and the reverse. OpenSSL runs the handshake; once a TLS 1.3
// handshake is done the engine frees OpenSSL's connection object (~15 KiB,
// most of an idle session's cost) and keeps only the traffic secrets, keys
// and sequence numbers of RFC 8446 §5 (about 250 bytes), sealing and opening
// records itself with OpenSSL's AEAD ciphers. TLS 1.2 connections keep the
// OpenSSL object for their whole life.
class TlsEngine {
  public:
    class Sink {
      public:
        virtual ~Sink() = default;
        // The handshake finished; plaintext may follow in the same feed().
        // Returns false when the connection is closing (stop feeding).
        virtual bool onHandshakeDone() = 0;
        // Application data from the peer. Returns false to stop feeding.
        virtual bool onPlaintext(std::string_view bytes) = 0;
    };

    enum class Result {
        Ok,          // everything fed was consumed (or is buffered as a partial record)
        Stopped,     // a sink callback returned false
        PeerClosed,  // close_notify from the peer
        Failed,      // protocol or crypto error; error() says which, an alert may be queued
    };

    explicit TlsEngine(TlsContext& context);
    ~TlsEngine();
    TlsEngine(const TlsEngine&) = delete;
    TlsEngine& operator=(const TlsEngine&) = delete;

    // Feeds ciphertext from the peer; ciphertext to send back (handshake
    // messages, alerts, KeyUpdate) is appended to out.
    Result feed(std::string_view ciphertext, std::string& out, Sink& sink);
    // Encrypts application data, appending the records to out. False after a failure.
    bool write(std::string_view plaintext, std::string& out);
    // Appends close_notify (RFC 8446 §6.1).
    void close(std::string& out);

    bool established() const { return established_; }
    bool compact() const { return compact_; }
    std::string_view version() const;
    const std::string& error() const;
    // Channel binding data for SCRAM-*-PLUS: "tls-exporter" (RFC 9266, TLS
    // 1.3 only) and "tls-server-end-point" (RFC 5929 §4.1); empty when unavailable.
    std::string channelBinding(std::string_view type) const;
    // Gives back buffer memory while the connection is idle.
    void trim();

    // Installed on the SSL_CTX by TlsContext: receives the TLS 1.3 traffic secrets.
    static void keylogCallback(const ssl_st* ssl, const char* line);

  private:
    Result handshake(std::string& out, Sink& sink);
    Result readOpenSsl(std::string& out, Sink& sink);
    bool tryCompact();
    void drainOpenSsl(std::string& out);
    void freeOpenSsl();

    TlsContext& context_;
    ssl_st* ssl_ = nullptr;
    bio_st* netIn_ = nullptr;
    bio_st* netOut_ = nullptr;
    // Filled with the secrets during a TLS 1.3 handshake; the record layer
    // once compact_ (OpenSSL's object is gone then).
    std::unique_ptr<Tls13Records> records_;
    std::string error_;
    bool established_ = false;
    bool compact_ = false;
};

}  // namespace xmppd
