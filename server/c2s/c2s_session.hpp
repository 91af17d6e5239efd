#pragma once

#include <chrono>
#include <ctime>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/hooks.hpp"
#include "server/net/transport.hpp"
#include "server/session.hpp"
#include "xmpp/jid.hpp"
#include "xmpp/sasl/scram.hpp"
#include "xmpp/stream_parser.hpp"

namespace xmppd {

class C2sService;

// One client-to-server stream (RFC 6120): STARTTLS, SASL, resource binding,
// then stanzas to and from the router. Lives on one worker; every method
// except deliver() and closeWithError() runs on that worker's thread.
class C2sSession final : public Session, public TransportHandler, public xmpp::StreamParserHandler {
  public:
    using Clock = std::chrono::steady_clock;

    C2sSession(C2sService& service, Worker& worker, std::shared_ptr<Transport> transport,
               const ListenerConfig& listener);
    ~C2sSession() override;

    void start();
    void tick(Clock::time_point now);
    void shutdown();

    // Session
    uint64_t id() const override { return id_; }
    const xmpp::Jid& jid() const override { return jid_; }
    Worker& worker() override { return worker_; }
    void deliver(xmpp::Element stanza) override;
    void deliverTracked(xmpp::Element stanza, std::function<void(bool accepted)> done) override;
    void deliverHeld(xmpp::Element stanza, HandledToken handled) override;
    void closeWithError(xmpp::StreamError error) override;
    size_t queuedBytes() const override;
    std::string_view peer() const override;
    std::string_view credentialId() const override { return credentialId_; }

  private:
    enum class State {
        Connected,      // waiting for the stream header / features negotiation
        TlsHandshake,   // <proceed/> sent, TLS under way
        SaslPending,    // a SASL step is waiting for storage
        SaslScram,      // server-first sent, waiting for client-final
        Authenticated,  // SASL succeeded; waiting for the restarted stream, then bind
        BindPending,    // binding or resumption under way
        Bound,          // resource bound: stanzas flow
        Hibernating,    // XEP-0198: connection lost, waiting for a resumption
        Closing,
        Closed,
        Transferred,  // XEP-0198: resumed by another connection (successor_)
    };

  public:
    // A stanza written under XEP-0198 and not yet acknowledged.
    struct Unacked {
        xmpp::Element stanza;
        std::function<void(bool)> done;  // tracked delivery, or null
        std::time_t queuedAt;            // our receive time: its XEP-0203 stamp if it ends up elsewhere
        HandledToken handled = nullptr;  // the sender's 'h' waits for our ack or a durable copy
        std::shared_ptr<PendingCopy> copy = nullptr;  // that durable copy (DeliveryPending)
    };
    // What a resumption moves from the old session to the new one.
    struct SmTransfer {
        xmpp::Jid jid;
        bool available = false;
        int priority = 0;
        std::shared_ptr<const xmpp::Element> presence;
        std::string id;
        uint64_t previousId = 0;  // the old session's id()
        uint32_t inHandled = 0;
        uint32_t outAcked = 0;
        std::deque<Unacked> unacked;
    };

  private:
    // TransportHandler
    void onData(std::string_view bytes) override;
    void onTlsEstablished() override;
    void onClosed(std::string_view reason) override;
    // StreamParserHandler
    void onStreamOpen(const xmpp::StreamHeader& header) override;
    void onElement(xmpp::Element&& element) override;
    void onStreamClose() override;

    void sendHeader();
    void sendFeatures();
    void send(const xmpp::Element& element);
    void sendRaw(std::string_view bytes);
    void streamError(xmpp::StreamError error);
    void closeStream();
    void cleanup();

    void handlePreAuth(xmpp::Element& e);
    void handleAuth(const xmpp::Element& auth);
    void handleSaslResponse(const xmpp::Element& response);
    void scramClientFirst(std::string message);
    void saslFailure(std::string_view condition, std::string_view text = {});
    // XEP-0077: an iq a module answers before authentication; false when none does.
    bool handlePreAuthIq(const xmpp::Element& iq);
    void saslSuccess(const std::string& username, std::string additional, std::string keyId);
    void handleBinding(xmpp::Element& e);
    void bind(const std::string& resource, const std::string& iqId);
    void handleStanza(xmpp::Element& e);
    void handlePresence(xmpp::Element& e);
    void broadcastToOwnResources(const xmpp::Element& presence);
    void deliverEntry(xmpp::Element stanza, std::function<void(bool)> done, HandledToken handled);
    void write(xmpp::Element stanza, std::function<void(bool)> done, HandledToken handled = nullptr);
    bool holdWhileInactive(xmpp::Element& stanza);
    void flushHeld();

    // XEP-0198 stream management (stream_management.cpp).
    bool handleSmElement(xmpp::Element& e);
    void smEnable(const xmpp::Element& e);
    void smAck(const xmpp::Element& e);
    void smResume(const xmpp::Element& e);
    void smRequestAck();
    uint32_t smHandledCount() const;
    HandledToken smHandledToken();
    void smMarkHandled(uint64_t seq);
    void smFailUnacked();
    // The client acknowledged u: its tracker and any durable copy are told.
    static void smAccepted(Unacked& u);
    // Makes durable copies of held messages unacknowledged for longer than
    // stream_management.ack_grace (all of them when `all`).
    void smPersistHeld(bool all);
    bool redeliverToOtherResources(xmpp::Element& stanza, const HandledToken& handled = nullptr);
    bool smHibernate();
    std::optional<SmTransfer> smTakeOver(uint32_t h, const std::shared_ptr<C2sSession>& successor);
    void smInstall(SmTransfer state);
    bool tlsOffered() const;
    bool channelBindingOffered() const;

    C2sService& service_;
    Worker& worker_;
    std::shared_ptr<Transport> transport_;
    const ListenerConfig& listener_;
    xmpp::StreamParser parser_;
    uint64_t id_;
    State state_ = State::Connected;
    bool headerSent_ = false;
    bool restartParser_ = false;
    bool inFeed_ = false;
    bool scramFirstDone_ = false;
    xmpp::sasl::ScramHash scramHash_ = xmpp::sasl::ScramHash::Sha256;
    bool available_ = false;
    bool everAvailable_ = false;
    std::shared_ptr<const xmpp::Element> lastPresence_;  // for probes (RFC 6121 §4.3)
    int priority_ = 0;
    int saslFailures_ = 0;
    uint8_t preAuthIqs_ = 0;  // iqs answered before authentication (XEP-0077)
    std::string host_;
    std::string streamId_;
    xmpp::Jid jid_;
    std::unique_ptr<xmpp::sasl::ScramServer> scram_;
    std::string scramUser_;
    std::string credentialId_;  // the device key it logged in with, if any
    Clock::time_point started_;
    Clock::time_point lastInput_;
    Clock::time_point pingSent_{};
    bool pingOutstanding_ = false;
    uint32_t pingCounter_ = 0;

    // XEP-0198 state. Counters are the protocol's 32-bit wrapping values.
    bool smEnabled_ = false;
    bool smResumable_ = false;
    std::string smId_;
    uint64_t inReceived_ = 0;         // stanzas received since <enable/>
    std::set<uint64_t> inUnhandled_;  // received, not yet handled (durable writes pending)
    uint32_t outAcked_ = 0;           // the client's last h
    std::deque<Unacked> unacked_;
    bool ackRequestInFlight_ = false;
    bool ackRequestScheduled_ = false;
    Clock::time_point lastAckRequest_{};
    Clock::time_point hibernateUntil_{};
    std::weak_ptr<C2sSession> successor_;

    // XEP-0352 client state indication: while inactive, presence is held and
    // folded (latest per sender); anything else flushes it.
    bool csiInactive_ = false;
    std::vector<xmpp::Element> heldPresence_;
};

}  // namespace xmppd
