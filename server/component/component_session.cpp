#include "server/component/component_session.hpp"

#include <spdlog/spdlog.h>

#include "server/component/component_service.hpp"
#include "server/component/handshake.hpp"
#include "server/router.hpp"
#include "server/worker.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/sasl/crypto.hpp"
#include "xmpp/serializer.hpp"

namespace xmppd {

using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;
using xmpp::StreamCondition;
using xmpp::StreamError;
namespace ns = xmpp::ns;

namespace {

std::string randomId() {
    std::string id = xmpp::sasl::base64Encode(xmpp::sasl::randomBytes(12));
    for (char& c : id) {
        if (c == '+' || c == '/') {
            c = 'x';
        }
    }
    return id;
}

// Inside the router every stanza is in jabber:client (what c2s sessions and
// modules expect); the component's stream uses jabber:component:accept.
void toClientNamespace(Element& e) {
    if (e.ns() == ns::kComponentAccept) {
        e.setNs(std::string(ns::kClient));
    }
    for (auto& child : e.children()) {
        if (!child.isText()) {
            toClientNamespace(child);
        }
    }
}

}  // namespace

ComponentSession::ComponentSession(ComponentService& service, Worker& worker,
                                   std::shared_ptr<Transport> transport)
    : service_(service),
      worker_(worker),
      transport_(std::move(transport)),
      parser_(*this, service.config().limits.parser),
      id_(service.nextSessionId()) {}

ComponentSession::~ComponentSession() = default;

void ComponentSession::start() {
    started_ = Clock::now();
    transport_->setHandler(this);
    spdlog::debug("component:{} connection from {}", id_, transport_->peer());
    transport_->start();
}

std::string_view ComponentSession::peer() const {
    return transport_->peer();
}

size_t ComponentSession::queuedBytes() const {
    return transport_->pendingBytes();
}

// ---- transport events ----

void ComponentSession::onData(std::string_view bytes) {
    if (state_ == State::Closing || state_ == State::Closed) {
        return;
    }
    if (auto err = parser_.feed(bytes)) {
        streamError(std::move(*err));
        return;
    }
    if (shaper_.limited()) {
        auto pause = shaper_.consume(bytes.size(), Clock::now());
        if (pause.count() > 0) {
            transport_->pauseReading(pause);
        }
    }
}

void ComponentSession::onClosed(std::string_view reason) {
    spdlog::debug("component:{} closed: {}", id_, reason);
    cleanup();
}

// ---- stream level ----

void ComponentSession::sendHeader() {
    streamId_ = randomId();
    std::string h =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
        "xmlns:stream='http://etherx.jabber.org/streams' id='" +
        streamId_ + "'";
    if (!domain_.empty()) {
        h += " from='";
        xmpp::appendEscaped(h, domain_);
        h += "'";
    }
    h += ">";
    sendRaw(h);
    headerSent_ = true;
}

void ComponentSession::onStreamOpen(const xmpp::StreamHeader& header) {
    if (state_ != State::Connected || headerSent_) {
        return;
    }
    auto domain = xmpp::prepDomainpart(header.to);
    const ComponentConfig* component = domain ? service_.find(*domain) : nullptr;
    if (component) {
        domain_ = component->domain;
        secret_ = component->secret;
        if (component->maxStanzaBytes > 0) {
            auto limits = service_.config().limits.parser;
            limits.maxStanzaBytes = component->maxStanzaBytes;
            parser_.setLimits(limits);
        }
        shaper_ = Shaper(component->bytesPerSecond, Clock::now());
    }
    sendHeader();
    if (header.contentNs != ns::kComponentAccept) {
        streamError(
            StreamError{StreamCondition::InvalidNamespace, "expected the jabber:component:accept namespace"});
        return;
    }
    if (!component) {
        // XEP-0114 §3 and RFC 6120 §4.9.3.6.
        streamError(
            StreamError{StreamCondition::HostUnknown, "no component is configured for '" + header.to + "'"});
        return;
    }
    if (int wait = service_.admitConnection(*component, Clock::now())) {
        // RFC 6120 §4.9.3.12: the entity violated a local service policy.
        streamError(StreamError{StreamCondition::PolicyViolation,
                                "more than " + std::to_string(component->connectionsPerMinute) +
                                    " connections per minute for " + domain_ + "; retry in " +
                                    std::to_string(wait) + " s"});
    }
}

void ComponentSession::onStreamClose() {
    spdlog::debug("component:{} {} closed the stream", id_, domain_);
    closeStream();
}

void ComponentSession::sendRaw(std::string_view bytes) {
    if (state_ == State::Closed) {
        return;
    }
    transport_->send(bytes);
}

void ComponentSession::streamError(StreamError error) {
    if (state_ == State::Closing || state_ == State::Closed) {
        return;
    }
    if (!headerSent_) {
        sendHeader();
    }
    spdlog::info("component:{} {} {} stream error <{}/>{}{}", id_, transport_->peer(),
                 domain_.empty() ? "-" : domain_, xmpp::toString(error.condition),
                 error.text.empty() ? "" : ": ", error.text);
    std::string out = "<stream:error><";
    out.append(xmpp::toString(error.condition)).append(" xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
    if (!error.text.empty()) {
        out += "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>";
        xmpp::appendEscaped(out, error.text);
        out += "</text>";
    }
    out += "</stream:error>";
    sendRaw(out);
    closeStream();
}

void ComponentSession::closeStream() {
    if (state_ == State::Closing || state_ == State::Closed) {
        return;
    }
    if (!headerSent_) {
        sendHeader();
    }
    sendRaw("</stream:stream>");
    // Leave the routing table at once: from here stanzas to the domain get
    // <service-unavailable/> instead of waiting on a closing stream.
    detach();
    state_ = State::Closing;
    transport_->close();
}

void ComponentSession::detach() {
    if (!attached_) {
        return;
    }
    attached_ = false;
    service_.router().detachComponent(domain_, this);
    spdlog::info("component:{} {} {} disconnected ({} stanzas in, {} out)", id_, transport_->peer(), domain_,
                 in_.load(), out_.load());
}

void ComponentSession::cleanup() {
    if (state_ == State::Closed) {
        return;
    }
    detach();
    state_ = State::Closed;
    service_.sessionEnded(*this);
}

void ComponentSession::closeWithError(StreamError error) {
    worker_.post([self = std::static_pointer_cast<ComponentSession>(shared_from_this()),
                  error = std::move(error)]() mutable { self->streamError(std::move(error)); });
}

void ComponentSession::shutdown() {
    streamError(StreamError{StreamCondition::SystemShutdown, "the server is stopping"});
}

void ComponentSession::tick(Clock::time_point now) {
    queued_ = transport_->pendingBytes();  // the gauge follows the drain too
    if (state_ == State::Connected &&
        now - started_ > std::chrono::seconds(service_.config().limits.loginTimeout)) {
        streamError(StreamError{StreamCondition::ConnectionTimeout, "no handshake in time"});
    }
}

// ---- elements ----

void ComponentSession::onElement(Element&& e) {
    if (state_ == State::Connected) {
        if (e.is("handshake", ns::kComponentAccept) && !domain_.empty()) {
            handleHandshake(e);
            return;
        }
        // XEP-0114 §3: nothing but the handshake before authentication.
        streamError(StreamError{StreamCondition::NotAuthorized, "send the handshake first"});
        return;
    }
    if (state_ == State::Authenticated) {
        handleStanza(e);
    }
}

void ComponentSession::handleHandshake(const Element& handshake) {
    if (!componentHandshakeMatches(streamId_, secret_, handshake.text())) {
        streamError(StreamError{StreamCondition::NotAuthorized, "wrong handshake"});
        return;
    }
    auto jid = Jid::parse(domain_);
    if (!jid) {
        streamError(
            StreamError{StreamCondition::InternalServerError, "the component domain is not a valid JID"});
        return;
    }
    jid_ = *jid;
    connectedSince_ = std::chrono::system_clock::now();
    // RFC 6120 §4.9.3.3: one stream per domain; the newcomer is refused.
    if (!service_.router().attachComponent(domain_, shared_from_this())) {
        streamError(StreamError{StreamCondition::Conflict, domain_ + " is already connected"});
        return;
    }
    attached_ = true;
    state_ = State::Authenticated;
    sendRaw("<handshake/>");
    spdlog::info("component:{} {} connected as {}", id_, transport_->peer(), domain_);
}

void ComponentSession::handleStanza(Element& e) {
    if ((e.ns() != ns::kComponentAccept && e.ns() != ns::kClient) || !xmpp::isStanza(e)) {
        // RFC 6120 §4.9.3.24.
        streamError(
            StreamError{StreamCondition::UnsupportedStanzaType, "unknown element <" + e.name() + "/>"});
        return;
    }
    toClientNamespace(e);
    // XEP-0114 §3: a component stamps 'from' itself; it may only speak for
    // addresses at its own domain (RFC 6120 §4.9.3.10).
    auto from = Jid::parse(e.attr("from"));
    if (!from || from->domain() != domain_) {
        streamError(StreamError{StreamCondition::InvalidFrom, "'from' must be an address at " + domain_});
        return;
    }
    ++in_;
    if (e.name() == "iq") {
        std::string_view type = e.attr("type");
        bool request = type == "get" || type == "set";
        if (!e.hasAttr("id") || (!request && type != "result" && type != "error") ||
            (request && e.elementCount() != 1)) {
            // RFC 6120 §8.2.3.
            service_.router().bounce(e, StanzaError(StanzaCondition::BadRequest, "malformed iq"));
            return;
        }
    }
    if (!e.hasAttr("to")) {
        // A component has no account for a missing 'to' to stand for.
        service_.router().bounce(e, StanzaError(StanzaCondition::BadRequest, "a stanza needs a 'to'"));
        return;
    }
    service_.router().route(std::move(e));
}

// ---- delivery ----

void ComponentSession::deliver(Element stanza) {
    if (!worker_.inThisThread()) {
        worker_.post([self = std::static_pointer_cast<ComponentSession>(shared_from_this()),
                      s = std::move(stanza)]() mutable { self->deliver(std::move(s)); });
        return;
    }
    if (state_ != State::Authenticated) {
        // The stream ended after the router picked it: as if disconnected.
        if (stanza.name() != "presence") {
            service_.router().bounce(
                stanza, StanzaError(StanzaCondition::ServiceUnavailable, "the component is not connected"));
        }
        return;
    }
    write(std::move(stanza));
}

void ComponentSession::deliverTracked(Element stanza, std::function<void(bool)> done) {
    if (!worker_.inThisThread()) {
        worker_.post(
            [self = std::static_pointer_cast<ComponentSession>(shared_from_this()), s = std::move(stanza),
             done = std::move(done)]() mutable { self->deliverTracked(std::move(s), std::move(done)); });
        return;
    }
    if (state_ != State::Authenticated) {
        done(false);
        return;
    }
    write(std::move(stanza));
    done(true);  // no acknowledgements on a component stream: written is accepted
}

void ComponentSession::write(Element stanza) {
    thread_local std::string buf;
    buf.clear();
    // Serialized as if jabber:client were in scope: the stanza then carries
    // no xmlns and takes the stream's default, jabber:component:accept.
    xmpp::serialize(stanza, buf, ns::kClient);
    sendRaw(buf);
    if (buf.capacity() > 64 * 1024) {
        std::string().swap(buf);
    }
    ++out_;
    queued_ = transport_->pendingBytes();
    size_t limit = service_.config().limits.maxOutboundBytes;
    if (transport_->pendingBytes() > limit) {
        spdlog::warn(
            "component:{} {} {} outbound queue over {} bytes (the component is not reading), closing", id_,
            transport_->peer(), domain_, limit);
        streamError(StreamError{StreamCondition::PolicyViolation, "too much data queued for this component"});
    }
}

}  // namespace xmppd
