// One client-to-server XMPP session of the load generator: connect, STARTTLS
// or direct TLS (or neither), SASL (SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN),
// resource binding, optional initial presence, then a ping round trip so the
// server has processed everything before the session counts as ready.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tests/bench/conn.hpp"
#include "tests/bench/scram_client.hpp"
#include "tests/bench/xml_scan.hpp"

namespace bench {

enum class TlsMode { None, StartTls, Direct };

struct XmppSettings {
    sockaddr_in server{};
    std::string domain = "localhost";
    TlsMode tls = TlsMode::StartTls;
    std::string mechanism = "SCRAM-SHA-256";
};

class XmppConn;

class XmppEvents {
  public:
    virtual ~XmppEvents() = default;
    virtual void onReady(XmppConn& conn) = 0;
    // A stanza after the session is ready (iq pings from the server are answered here).
    virtual void onStanza(XmppConn& conn, std::string_view stanza) = 0;
    // The connection is gone (closed, refused, stream error, auth failure).
    virtual void onFailed(XmppConn& conn, std::string_view why) = 0;
};

class XmppConn : public Conn, private ScanSink {
  public:
    XmppConn(Loop& loop, SSL_CTX* tls, const XmppSettings& settings, XmppEvents& events, int index);

    // Starts a login; the outcome is onReady or onFailed.
    void login(std::string user, std::string password, bool presence, uint32_t srcAddr);
    void sendPresence() { send("<presence/>"); }
    // XEP-0198: asks for stream management; the server's <enabled/> or
    // <failed/> and every <a/> reach onStanza. Its <r/> is answered here.
    void enableStreamManagement();
    // Sends </stream:stream> and closes without waiting for the server's.
    void logout();

    int index() const { return index_; }
    bool ready() const { return phase_ == Phase::Ready; }
    bool busy() const { return phase_ != Phase::Idle; }
    const std::string& user() const { return user_; }
    const std::string& bareJid() const { return bareJid_; }
    const std::string& fullJid() const { return fullJid_; }
    int64_t loginStartedNs() const { return loginStarted_; }
    // Where a login stands, for error messages ("sasl", "bind" ...).
    const char* phaseName() const;

  private:
    enum class Phase { Idle, Connecting, StreamOpen, Features, Proceed, Sasl, Bind, Session, Barrier, Ready };

    void onConnected() override;
    void onTlsReady() override;
    void onBytes(std::string_view bytes) override;
    void onDisconnect(std::string_view why) override;
    bool onItem(ScanKind kind, std::string_view bytes) override;

    void sendHeader();
    bool onFeatures(std::string_view features);
    bool onSasl(std::string_view element);
    bool onBound(std::string_view iq);
    void afterBind();
    void answerIq(std::string_view iq);
    bool failWith(std::string why);

    const XmppSettings& settings_;
    XmppEvents& events_;
    int index_;
    Phase phase_ = Phase::Idle;
    StreamScanner scanner_;
    std::string in_;
    std::string user_;
    std::string password_;
    std::string bareJid_;
    std::string fullJid_;
    bool presence_ = true;
    bool tlsDone_ = false;
    bool authenticated_ = false;
    bool sessionRequired_ = false;
    bool stopScan_ = false;
    bool smRequested_ = false;
    uint32_t smInbound_ = 0;  // stanzas received since <enable/> (XEP-0198 'h')
    std::unique_ptr<ScramClient> scram_;
    int64_t loginStarted_ = 0;
};

}  // namespace bench
