#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "server/net/shaper.hpp"
#include "server/net/transport.hpp"
#include "server/session.hpp"
#include "xmpp/jid.hpp"
#include "xmpp/stream_parser.hpp"

namespace xmppd {

class ComponentService;

// One external component's stream (XEP-0114, jabber:component:accept): the
// stream header names the component's domain, <handshake/> proves the shared
// secret, then stanzas flow between the component and the router. Lives on
// one worker; deliver() and closeWithError() are safe from any thread.
class ComponentSession final : public Session, public TransportHandler, public xmpp::StreamParserHandler {
  public:
    using Clock = std::chrono::steady_clock;

    ComponentSession(ComponentService& service, Worker& worker, std::shared_ptr<Transport> transport);
    ~ComponentSession() override;

    void start();
    void tick(Clock::time_point now);
    void shutdown();

    // Session
    uint64_t id() const override { return id_; }
    // The component's domain once the handshake succeeded; empty before.
    const xmpp::Jid& jid() const override { return jid_; }
    Worker& worker() override { return worker_; }
    void deliver(xmpp::Element stanza) override;
    void deliverTracked(xmpp::Element stanza, std::function<void(bool accepted)> done) override;
    void closeWithError(xmpp::StreamError error) override;
    size_t queuedBytes() const override;
    std::string_view peer() const override;

    // For xmppctl list_components; safe from any thread once connected.
    uint64_t stanzasIn() const { return in_.load(); }
    uint64_t stanzasOut() const { return out_.load(); }
    // Bytes queued for the component, as of the last write to it.
    size_t queueGauge() const { return queued_.load(); }
    std::chrono::system_clock::time_point connectedSince() const { return connectedSince_; }

  private:
    enum class State { Connected, Authenticated, Closing, Closed };

    // TransportHandler
    void onData(std::string_view bytes) override;
    void onTlsEstablished() override {}
    void onClosed(std::string_view reason) override;
    // StreamParserHandler
    void onStreamOpen(const xmpp::StreamHeader& header) override;
    void onElement(xmpp::Element&& element) override;
    void onStreamClose() override;

    void handleHandshake(const xmpp::Element& handshake);
    void handleStanza(xmpp::Element& stanza);
    void write(xmpp::Element stanza);
    void sendHeader();
    void sendRaw(std::string_view bytes);
    void streamError(xmpp::StreamError error);
    void closeStream();
    void detach();
    void cleanup();

    ComponentService& service_;
    Worker& worker_;
    std::shared_ptr<Transport> transport_;
    xmpp::StreamParser parser_;
    uint64_t id_;
    State state_ = State::Connected;
    bool headerSent_ = false;
    bool attached_ = false;
    std::string streamId_;
    std::string domain_;  // from the stream header, once known to be configured
    std::string secret_;
    xmpp::Jid jid_;
    Clock::time_point started_;
    Shaper shaper_;  // the component's bytes_per_second
    std::atomic<uint64_t> in_{0};
    std::atomic<uint64_t> out_{0};
    std::atomic<size_t> queued_{0};
    std::chrono::system_clock::time_point connectedSince_{};
};

}  // namespace xmppd
