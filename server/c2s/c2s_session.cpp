#include "server/c2s/c2s_session.hpp"

#include <spdlog/spdlog.h>

#include "server/accounts.hpp"
#include "server/c2s/c2s_service.hpp"
#include "server/router.hpp"
#include "server/worker.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/sasl/crypto.hpp"
#include "xmpp/sasl/plain.hpp"
#include "xmpp/serializer.hpp"

namespace xmppd {

using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;
using xmpp::StreamCondition;
using xmpp::StreamError;
namespace ns = xmpp::ns;
namespace sasl = xmpp::sasl;

namespace {

constexpr int kMaxSaslFailures = 5;  // RFC 6120 §6.4.5: a configurable number of retries
constexpr int kMaxPreAuthIqs = 10;   // per stream, before authentication
constexpr std::string_view kClient = ns::kClient;
constexpr size_t kMaxHeldPresence = 1000;  // XEP-0352: beyond this, flush rather than grow

std::string randomId() {
    std::string id = sasl::base64Encode(sasl::randomBytes(12));
    for (char& c : id) {
        if (c == '+' || c == '/') {
            c = 'x';
        }
    }
    return id;
}

// RFC 6120 §6.5: the element name of each SASL failure condition.
std::string_view saslCondition(sasl::SaslFailure f) {
    switch (f) {
        case sasl::SaslFailure::Aborted:
            return "aborted";
        case sasl::SaslFailure::IncorrectEncoding:
            return "incorrect-encoding";
        case sasl::SaslFailure::InvalidAuthzid:
            return "invalid-authzid";
        case sasl::SaslFailure::InvalidMechanism:
            return "invalid-mechanism";
        case sasl::SaslFailure::MalformedRequest:
            return "malformed-request";
        case sasl::SaslFailure::MechanismTooWeak:
            return "mechanism-too-weak";
        case sasl::SaslFailure::NotAuthorized:
            return "not-authorized";
        case sasl::SaslFailure::TemporaryAuthFailure:
            return "temporary-auth-failure";
        case sasl::SaslFailure::AccountDisabled:
            return "account-disabled";
        case sasl::SaslFailure::CredentialsExpired:
            return "credentials-expired";
        case sasl::SaslFailure::EncryptionRequired:
            return "encryption-required";
    }
    return "not-authorized";
}

std::string saslFailureXml(std::string_view condition, std::string_view text) {
    std::string out = "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><";
    out.append(condition).append("/>");
    if (!text.empty()) {
        out += "<text xml:lang='en'>";
        xmpp::appendEscaped(out, text);
        out += "</text>";
    }
    out += "</failure>";
    return out;
}

}  // namespace

C2sSession::C2sSession(C2sService& service, Worker& worker, std::shared_ptr<Transport> transport,
                       const ListenerConfig& listener)
    : service_(service),
      worker_(worker),
      transport_(std::move(transport)),
      listener_(listener),
      parser_(*this, service.config().limits.parser),
      id_(service.nextSessionId()) {}

C2sSession::~C2sSession() = default;

void C2sSession::start() {
    started_ = lastInput_ = Clock::now();
    transport_->setHandler(this);
    spdlog::debug("c2s:{} connection from {}", id_, transport_->peer());
    transport_->start();
}

std::string_view C2sSession::peer() const {
    return transport_->peer();
}
size_t C2sSession::queuedBytes() const {
    return transport_->pendingBytes();
}

// ---- transport events ----

void C2sSession::onData(std::string_view bytes) {
    if (state_ == State::Closing || state_ == State::Closed) {
        return;
    }
    lastInput_ = Clock::now();
    pingOutstanding_ = false;
    inFeed_ = true;
    auto err = parser_.feed(bytes);
    inFeed_ = false;
    if (err) {
        spdlog::info("c2s:{} {} stream error {}: {}", id_, transport_->peer(), xmpp::toString(err->condition),
                     err->text);
        streamError(std::move(*err));
        return;
    }
    if (restartParser_) {
        restartParser_ = false;
        parser_.reset();
        if (state_ == State::TlsHandshake) {
            transport_->startTls();
        }
    }
}

void C2sSession::onTlsEstablished() {
    if (state_ == State::TlsHandshake) {
        state_ = State::Connected;
        headerSent_ = false;
    }
    spdlog::debug("c2s:{} TLS established ({})", id_, transport_->tlsVersion());
}

void C2sSession::onClosed(std::string_view reason) {
    spdlog::debug("c2s:{} closed: {} (state {}, sm {}{})", id_, reason, static_cast<int>(state_), smEnabled_,
                  smResumable_ ? ", resumable" : "");
    // XEP-0198 §5: a resumable session outlives its connection for a while.
    if (state_ == State::Bound && smHibernate()) {
        return;
    }
    cleanup();
}

// ---- stream level ----

void C2sSession::sendHeader() {
    streamId_ = randomId();
    std::string h =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' id='" +
        streamId_ + "' from='";
    xmpp::appendEscaped(h, host_.empty() ? service_.router().hosts().front() : host_);
    h += "' version='1.0' xml:lang='en'>";
    sendRaw(h);
    headerSent_ = true;
}

void C2sSession::onStreamOpen(const xmpp::StreamHeader& header) {
    if (state_ == State::Closing || state_ == State::Closed) {
        return;
    }
    if (host_.empty()) {
        // RFC 6120 §4.7.1: without 'to' we answer for our first host.
        auto domain = header.to.empty() ? std::optional<std::string>(service_.router().hosts().front())
                                        : xmpp::prepDomainpart(header.to);
        host_ = domain ? *domain : std::string();
    }
    sendHeader();
    if (host_.empty() || !service_.router().isLocalHost(host_)) {
        host_.clear();
        streamError(StreamError{StreamCondition::HostUnknown, "this server does not serve " + header.to});
        return;
    }
    if (!header.to.empty() && xmpp::prepDomainpart(header.to).value_or("") != host_) {
        // A restarted stream must address the same host (RFC 6120 §4.3.3).
        streamError(StreamError{StreamCondition::HostUnknown, "the stream was restarted for another host"});
        return;
    }
    if (header.contentNs != kClient) {
        streamError(StreamError{StreamCondition::InvalidNamespace, "expected the jabber:client namespace"});
        return;
    }
    if (header.version.empty() || header.version[0] < '1') {
        // RFC 6120 §4.7.5: we speak version 1.0 only.
        streamError(StreamError{StreamCondition::UnsupportedVersion, "version 1.0 is required"});
        return;
    }
    sendFeatures();
}

bool C2sSession::tlsOffered() const {
    return service_.tls() && !transport_->isTls() && !listener_.directTls;
}

bool C2sSession::channelBindingOffered() const {
    return transport_->isTls() && !transport_->channelBinding("tls-server-end-point").empty();
}

void C2sSession::sendFeatures() {
    std::string f = "<stream:features>";
    if (state_ == State::Connected) {
        bool tlsRequired = listener_.starttlsRequired && tlsOffered();
        if (tlsOffered()) {
            f += "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>";
            f += tlsRequired ? "<required/></starttls>" : "</starttls>";
        }
        if (!tlsRequired) {
            f += "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
            if (channelBindingOffered()) {
                f += "<mechanism>SCRAM-SHA-256-PLUS</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>";
            }
            f += "<mechanism>SCRAM-SHA-256</mechanism><mechanism>SCRAM-SHA-1</mechanism>";
            if (transport_->isTls() && service_.config().auth.allowPlain) {
                f += "<mechanism>PLAIN</mechanism>";
            }
            f += "</mechanisms>";
            // XEP-0077 §4: in-band registration, where a module offers it.
            f += service_.preAuthFeatures();
            if (channelBindingOffered()) {
                // XEP-0440: the channel-binding types we support.
                f += "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>";
                if (!transport_->channelBinding("tls-exporter").empty()) {
                    f += "<channel-binding type='tls-exporter'/>";
                }
                f += "<channel-binding type='tls-server-end-point'/></sasl-channel-binding>";
            }
        }
    } else if (state_ == State::Authenticated) {
        f += "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>";
        // RFC 6121 §C / draft-cridland-xmpp-session: optional, kept for old clients.
        f += "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>";
        if (service_.config().streamManagement.enabled) {
            f += "<sm xmlns='urn:xmpp:sm:3'/>";
        }
        f += "<csi xmlns='urn:xmpp:csi:0'/>";
        f += service_.streamFeatures();
    }
    f += "</stream:features>";
    sendRaw(f);
}

void C2sSession::onStreamClose() {
    spdlog::debug("c2s:{} client closed the stream", id_);
    closeStream();
}

void C2sSession::sendRaw(std::string_view bytes) {
    if (state_ == State::Closed || state_ == State::Hibernating || state_ == State::Transferred) {
        return;
    }
    transport_->send(bytes);
}

void C2sSession::send(const Element& element) {
    thread_local std::string buf;
    buf.clear();
    xmpp::serialize(element, buf, kClient);
    sendRaw(buf);
    if (buf.capacity() > 64 * 1024) {
        std::string().swap(buf);
    }
}

void C2sSession::streamError(StreamError error) {
    if (state_ == State::Hibernating) {
        cleanup();  // no connection to tell
        return;
    }
    if (state_ == State::Closing || state_ == State::Closed || state_ == State::Transferred) {
        return;
    }
    if (!headerSent_) {
        sendHeader();
    }
    spdlog::info("c2s:{} {} stream error <{}/>{}{}", id_, jid_.empty() ? transport_->peer() : jid_.str(),
                 xmpp::toString(error.condition), error.text.empty() ? "" : ": ", error.text);
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

void C2sSession::closeStream() {
    if (state_ == State::Closing || state_ == State::Closed || state_ == State::Transferred ||
        state_ == State::Hibernating) {
        return;
    }
    if (!headerSent_) {
        sendHeader();
    }
    sendRaw("</stream:stream>");
    // Leave the routing table at once: nothing new should be queued here.
    if (!jid_.empty()) {
        service_.router().unbind(jid_, this);
    }
    state_ = State::Closing;
    // Acks no longer count from here on (onData ignores a closing stream),
    // so what is unacknowledged goes now, ahead of the stanzas that still
    // reach this session: they follow it to offline storage in order.
    if (!jid_.empty()) {
        smFailUnacked();
    }
    transport_->close();
}

void C2sSession::cleanup() {
    if (state_ == State::Closed || state_ == State::Transferred) {
        return;
    }
    bool wasBound = !jid_.empty();
    state_ = State::Closed;
    if (!smId_.empty()) {
        service_.smUnregister(smId_, this);
    }
    if (wasBound) {
        service_.router().unbind(jid_, this);
        // Unacknowledged messages go to delivery_failed (offline storage),
        // never to the floor (XEP-0198 §5, the delivery promise).
        smFailUnacked();
        if (available_) {
            available_ = false;
            Element unavailable("presence", std::string(kClient));
            unavailable.setAttr("type", "unavailable");
            unavailable.setAttr("from", jid_.str());
            broadcastToOwnResources(unavailable);
            service_.hooks().presenceChanged.run(PresenceChanged{this, jid_, false, 0, &unavailable, false});
        }
        service_.hooks().sessionClosed.run(SessionEvent{this, jid_});
        spdlog::info("c2s:{} {} ended", id_, jid_.str());
    }
    service_.sessionEnded(*this);
}

void C2sSession::closeWithError(StreamError error) {
    worker_.post([self = std::static_pointer_cast<C2sSession>(shared_from_this()),
                  error = std::move(error)]() mutable { self->streamError(std::move(error)); });
}

void C2sSession::shutdown() {
    streamError(StreamError{StreamCondition::SystemShutdown, "the server is stopping"});
}

void C2sSession::tick(Clock::time_point now) {
    if (smEnabled_ && !unacked_.empty() && (state_ == State::Bound || state_ == State::Hibernating)) {
        smPersistHeld(false);
    }
    if (state_ == State::Hibernating) {
        if (now >= hibernateUntil_) {
            spdlog::info("c2s:{} {} not resumed in time", id_, jid_.str());
            cleanup();
        }
        return;
    }
    if (state_ == State::Closing || state_ == State::Closed || state_ == State::Transferred) {
        return;
    }
    if (smEnabled_ && !unacked_.empty() && now - lastAckRequest_ > std::chrono::seconds(10)) {
        smRequestAck();
    }
    // An idle connection gives back its XML parser's memory (the headline
    // per-connection cost); the next byte rebuilds it.
    if (now - lastInput_ > std::chrono::seconds(2) && parser_.releaseIfIdle()) {
        transport_->trim();
    }
    const auto& limits = service_.config().limits;
    if (state_ != State::Bound) {
        if (now - started_ > std::chrono::seconds(limits.loginTimeout)) {
            streamError(StreamError{StreamCondition::ConnectionTimeout, "login took too long"});
        }
        return;
    }
    const auto& keepalive = service_.keepalive();
    if (keepalive) {
        if (pingOutstanding_) {
            if (now - pingSent_ > std::chrono::seconds(keepalive->timeout)) {
                streamError(StreamError{StreamCondition::ConnectionTimeout, "no answer to ping"});
            }
        } else if (now - lastInput_ > std::chrono::seconds(keepalive->interval)) {
            // XEP-0199 §4.2: server-to-client ping to detect dead connections.
            Element ping("iq", std::string(kClient));
            ping.setAttr("from", host_).setAttr("to", jid_.str()).setAttr("type", "get");
            ping.setAttr("id", "ka" + std::to_string(++pingCounter_));
            ping.addChild("ping", std::string(ns::kPing));
            send(ping);
            pingOutstanding_ = true;
            pingSent_ = now;
        }
    } else if (now - lastInput_ > std::chrono::seconds(limits.idleTimeout)) {
        streamError(StreamError{StreamCondition::ConnectionTimeout, "idle for too long"});
    }
}

// ---- elements ----

void C2sSession::onElement(Element&& e) {
    switch (state_) {
        case State::Connected:
        case State::SaslScram:
        case State::SaslPending:
            handlePreAuth(e);
            break;
        case State::Authenticated:
        case State::BindPending:
            handleBinding(e);
            break;
        case State::Bound:
            handleStanza(e);
            break;
        default:
            break;
    }
}

void C2sSession::handlePreAuth(Element& e) {
    if (e.is("starttls", ns::kTls) && state_ == State::Connected) {
        if (!tlsOffered()) {
            // RFC 6120 §5.4.2.2: failure, then close.
            sendRaw("<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
            closeStream();
            return;
        }
        sendRaw("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        state_ = State::TlsHandshake;
        restartParser_ = true;
        parser_.pause();  // what follows </starttls> belongs to TLS (RFC 6120 §5.4.3.3)
        return;
    }
    if (e.is("auth", ns::kSasl) && state_ == State::Connected) {
        if (listener_.starttlsRequired && tlsOffered()) {
            saslFailure("encryption-required", "use STARTTLS first");
            return;
        }
        handleAuth(e);
        return;
    }
    if (e.is("response", ns::kSasl) && state_ == State::SaslScram) {
        handleSaslResponse(e);
        return;
    }
    if (e.is("abort", ns::kSasl) && state_ != State::SaslPending) {
        scram_.reset();
        state_ = State::Connected;
        saslFailure("aborted");
        return;
    }
    if (e.name() == "iq" && e.ns() == ns::kClient && state_ == State::Connected &&
        !(listener_.starttlsRequired && tlsOffered()) && handlePreAuthIq(e)) {
        return;
    }
    // RFC 6120 §4.9.3.12: nothing else before authentication.
    streamError(StreamError{StreamCondition::NotAuthorized, "authenticate first"});
}

bool C2sSession::handlePreAuthIq(const Element& iq) {
    const Element* payload = iq.firstChildElement();
    std::string_view type = iq.attr("type");
    if (!payload || iq.elementCount() != 1 || (type != "get" && type != "set") || !iq.hasAttr("id")) {
        return false;
    }
    const PreAuthIq* handler = service_.preAuthIq(payload->ns());
    if (!handler) {
        return false;
    }
    // A bound on what an unauthenticated stream may ask for.
    if (++preAuthIqs_ > kMaxPreAuthIqs) {
        streamError(StreamError{StreamCondition::PolicyViolation, "too many requests before authentication"});
        return true;
    }
    std::string peer(transport_->peer());
    auto colon = peer.rfind(':');
    PreAuthRequest request{iq, *payload, host_, colon == std::string::npos ? peer : peer.substr(0, colon),
                           transport_->isTls()};
    std::weak_ptr<Session> weak = shared_from_this();
    Worker* worker = &worker_;
    handler->handler(request, [weak, worker](Element answer) {
        worker->post([weak, answer = std::move(answer)] {
            auto self = std::static_pointer_cast<C2sSession>(weak.lock());
            if (!self || self->state_ != State::Connected) {
                return;
            }
            std::string out;
            xmpp::serialize(answer, out, ns::kClient);
            self->sendRaw(out);
        });
    });
    return true;
}

void C2sSession::saslFailure(std::string_view condition, std::string_view text) {
    sendRaw(saslFailureXml(condition, text));
    scram_.reset();
    if (state_ != State::Closing && state_ != State::Closed) {
        state_ = State::Connected;
    }
    if (condition == "not-authorized" && ++saslFailures_ >= kMaxSaslFailures) {
        streamError(StreamError{StreamCondition::PolicyViolation, "too many failed authentication attempts"});
    }
}

void C2sSession::handleAuth(const Element& auth) {
    std::string mechanism(auth.attr("mechanism"));
    std::string text = auth.text();
    std::optional<std::string> initial;
    if (text == "=") {
        initial = std::string();
    } else if (!text.empty()) {
        initial = sasl::base64Decode(text);
        if (!initial) {
            saslFailure("incorrect-encoding");
            return;
        }
    }
    bool plus = mechanism == "SCRAM-SHA-256-PLUS" || mechanism == "SCRAM-SHA-1-PLUS";
    if (mechanism == "PLAIN" && transport_->isTls() && service_.config().auth.allowPlain) {
        auto creds = initial ? sasl::parsePlain(*initial) : std::nullopt;
        if (!creds) {
            saslFailure("malformed-request");
            return;
        }
        auto user = xmpp::prepLocalpart(creds->authcid);
        if (!user) {
            saslFailure("not-authorized");
            return;
        }
        if (!creds->authzid.empty() && creds->authzid != *user + "@" + host_) {
            saslFailure("invalid-authzid");
            return;
        }
        state_ = State::SaslPending;
        std::weak_ptr<Session> weak = shared_from_this();
        std::string username = *user;
        service_.accounts().checkPassword(username, host_, creds->password, &worker_,
                                          [weak, username](Accounts::Status s, std::string keyId) {
                                              auto self = std::static_pointer_cast<C2sSession>(weak.lock());
                                              if (!self || self->state_ != State::SaslPending) {
                                                  return;
                                              }
                                              if (s == Accounts::Status::Ok) {
                                                  self->saslSuccess(username, {}, std::move(keyId));
                                              } else if (s == Accounts::Status::Unavailable) {
                                                  self->saslFailure("temporary-auth-failure");
                                              } else {
                                                  self->saslFailure("not-authorized");
                                              }
                                          });
        return;
    }
    sasl::ScramHash hash;
    if (mechanism == "SCRAM-SHA-256" || mechanism == "SCRAM-SHA-256-PLUS") {
        hash = sasl::ScramHash::Sha256;
    } else if (mechanism == "SCRAM-SHA-1" || mechanism == "SCRAM-SHA-1-PLUS") {
        hash = sasl::ScramHash::Sha1;
    } else {
        saslFailure("invalid-mechanism");
        return;
    }
    if (plus && !channelBindingOffered()) {
        saslFailure("invalid-mechanism");
        return;
    }
    // The client names its channel-binding type in the GS2 header ("p=type,").
    std::string cbType;
    std::string cbData;
    if (plus && initial && initial->rfind("p=", 0) == 0) {
        cbType = initial->substr(2, initial->find(',') - 2);
        cbData = transport_->channelBinding(cbType);
        if (cbData.empty()) {
            saslFailure("malformed-request", "unsupported channel binding type");
            return;
        }
    } else if (plus) {
        cbType = "tls-server-end-point";
    }
    // RFC 5802 §6: with -PLUS offered, a 'y' flag is a downgrade and fails.
    scram_ = std::make_unique<sasl::ScramServer>(hash, cbType, cbData, channelBindingOffered());
    scramHash_ = hash;
    scramFirstDone_ = false;
    if (!initial) {
        // No initial response: ask for the client-first message.
        state_ = State::SaslScram;
        scramUser_.clear();
        sendRaw("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        return;
    }
    scramClientFirst(*initial);
}

void C2sSession::scramClientFirst(std::string message) {
    scramFirstDone_ = true;
    auto first = scram_->clientFirst(message);
    if (auto* failure = std::get_if<sasl::SaslFailure>(&first)) {
        saslFailure(saslCondition(*failure));
        return;
    }
    std::string username = std::get<std::string>(first);
    if (!scram_->authzid().empty()) {
        if (scram_->authzid() != username + "@" + host_) {
            saslFailure("invalid-authzid");
            return;
        }
    }
    auto user = xmpp::prepLocalpart(username);
    state_ = State::SaslPending;
    scramUser_ = user.value_or("");
    if (!user) {
        // Continue with a fake exchange so that bad names look like bad passwords.
        state_ = State::SaslScram;
        sendRaw("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
                sasl::base64Encode(scram_->serverFirst(std::nullopt)) + "</challenge>");
        return;
    }
    std::weak_ptr<Session> weak = shared_from_this();
    service_.accounts().scramCredentials(
        *user, host_, scramHash_, &worker_,
        [weak](Accounts::Status s, std::optional<sasl::ScramCredentials> creds) {
            auto self = std::static_pointer_cast<C2sSession>(weak.lock());
            if (!self || self->state_ != State::SaslPending || !self->scram_) {
                return;
            }
            if (s == Accounts::Status::Unavailable) {
                // RFC 6120 §6.5.11: storage is down; the client may retry.
                self->saslFailure("temporary-auth-failure");
                return;
            }
            self->state_ = State::SaslScram;
            std::string serverFirst = self->scram_->serverFirst(creds);
            self->sendRaw("<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" +
                          sasl::base64Encode(serverFirst) + "</challenge>");
        });
}

void C2sSession::handleSaslResponse(const Element& response) {
    std::string text = response.text();
    auto decoded =
        text.empty() || text == "=" ? std::optional<std::string>(std::string()) : sasl::base64Decode(text);
    if (!decoded) {
        saslFailure("incorrect-encoding");
        return;
    }
    if (!scram_) {
        saslFailure("malformed-request");
        return;
    }
    if (!scramFirstDone_) {
        scramClientFirst(*decoded);
        return;
    }
    auto final = scram_->clientFinal(*decoded);
    if (auto* failure = std::get_if<sasl::SaslFailure>(&final)) {
        spdlog::info("c2s:{} {} authentication failed for {}@{}", id_, transport_->peer(), scramUser_, host_);
        saslFailure(saslCondition(*failure));
        return;
    }
    saslSuccess(scramUser_, std::get<std::string>(final), scram_->matchedKey());
}

void C2sSession::saslSuccess(const std::string& username, std::string additional, std::string keyId) {
    scram_.reset();
    credentialId_ = std::move(keyId);
    if (!credentialId_.empty()) {
        service_.accounts().keyUsed(username, host_, credentialId_);
    }
    jid_ = Jid();
    scramUser_ = username;
    std::string out = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
    out += additional.empty() ? std::string() : sasl::base64Encode(additional);
    out += "</success>";
    sendRaw(out);
    state_ = State::Authenticated;
    headerSent_ = false;
    // RFC 6120 §6.4.6: the client restarts the stream. The parser can only be
    // reset outside its own callbacks: defer when we are inside feed().
    if (inFeed_) {
        restartParser_ = true;
    } else {
        parser_.reset();
    }
    spdlog::info("c2s:{} {} authenticated as {}@{}", id_, transport_->peer(), username, host_);
}

// ---- binding ----

void C2sSession::handleBinding(Element& e) {
    if (e.ns() == "urn:xmpp:sm:3" && handleSmElement(e)) {
        return;
    }
    if (e.name() == "iq" && e.ns() == kClient && e.attr("type") == "set") {
        if (const Element* b = e.findChild("bind", ns::kBind); b && state_ == State::Authenticated) {
            std::string resource;
            if (const Element* r = b->findChild("resource", ns::kBind)) {
                resource = r->text();
            }
            bind(resource, std::string(e.attr("id")));
            return;
        }
    }
    streamError(StreamError{StreamCondition::NotAuthorized, "bind a resource first"});
}

void C2sSession::bind(const std::string& requested, const std::string& iqId) {
    std::string resource;
    if (!requested.empty()) {
        auto prepped = xmpp::prepResourcepart(requested);
        if (!prepped) {
            Element err("iq", std::string(kClient));
            err.setAttr("id", iqId).setAttr("type", "error");
            err.addChild(StanzaError(StanzaCondition::BadRequest, "invalid resource").toElement(kClient));
            send(err);
            return;
        }
        resource = *prepped;
    } else {
        resource = randomId();
    }
    auto full = Jid::fromParts(scramUser_, host_, resource);
    if (!full) {
        streamError(StreamError{StreamCondition::InternalServerError, "cannot form the session's address"});
        return;
    }
    jid_ = *full;
    // RFC 6120 §7.7.2.2: the newest session wins; the old one gets <conflict/>.
    auto old = service_.router().bind(jid_, shared_from_this());
    if (old && old.get() != this) {
        old->closeWithError(
            StreamError{StreamCondition::Conflict, "replaced by a new session for the same resource"});
    }
    state_ = State::Bound;
    Element result("iq", std::string(kClient));
    result.setAttr("id", iqId).setAttr("type", "result");
    result.addChild("bind", std::string(ns::kBind))
        .addChild("jid", std::string(ns::kBind))
        .addText(jid_.str());
    send(result);
    spdlog::info("c2s:{} bound {}", id_, jid_.str());
    service_.hooks().sessionBound.run(SessionEvent{this, jid_});
}

// ---- stanzas ----

void C2sSession::handleStanza(Element& e) {
    if (e.ns() == "urn:xmpp:sm:3" && handleSmElement(e)) {
        return;
    }
    if (e.ns() == "urn:xmpp:csi:0" && (e.name() == "active" || e.name() == "inactive")) {
        csiInactive_ = e.name() == "inactive";
        if (!csiInactive_) {
            flushHeld();
        }
        return;
    }
    if (e.ns() != kClient || !xmpp::isStanza(e)) {
        // RFC 6120 §4.9.3.24.
        streamError(
            StreamError{StreamCondition::UnsupportedStanzaType, "unknown element <" + e.name() + "/>"});
        return;
    }
    // RFC 6120 §8.1.2.1: the server stamps 'from'; a client may only claim
    // its own full or bare JID, anything else is <invalid-from/>.
    if (auto* from = e.findAttr("from")) {
        auto claimed = Jid::parse(*from);
        if (!claimed || (*claimed != jid_ && *claimed != jid_.bare())) {
            streamError(StreamError{StreamCondition::InvalidFrom, "'from' is not this session's address"});
            return;
        }
    }
    e.setAttr("from", jid_.str());
    // XEP-0198: this stanza counts as handled once the router (and any
    // durable write it needs) is done with the token.
    HandledToken handled = smHandledToken();
    if (e.name() == "iq") {
        std::string_view type = e.attr("type");
        bool request = type == "get" || type == "set";
        if (!e.hasAttr("id") || (!request && type != "result" && type != "error") ||
            (request && e.elementCount() != 1)) {
            // RFC 6120 §8.2.3: an iq needs an id, a type, and one payload for get/set.
            service_.router().bounce(e, StanzaError(StanzaCondition::BadRequest, "malformed iq"));
            return;
        }
        if (!request && !e.hasAttr("to")) {
            return;  // answers to our keepalive pings
        }
    }
    if (e.name() == "presence") {
        handlePresence(e);
        return;
    }
    UserSent sent{&e, jid_, this};
    if (service_.hooks().userSent.run(sent) == Flow::Stop) {
        return;
    }
    service_.router().route(std::move(e), std::move(handled));
}

void C2sSession::handlePresence(Element& e) {
    UserSent outbound{&e, jid_, this};  // presence_outbound: avatar hash, blocking (hooks.hpp)
    if (service_.hooks().presenceOutbound.run(outbound) == Flow::Stop) {
        return;
    }
    std::string_view type = e.attr("type");
    if (e.hasAttr("to")) {
        // Directed presence and subscription requests (RFC 6121 §3, §4.6):
        // the roster module tracks and rewrites them on user_sent.
        UserSent sent{&e, jid_, this};
        if (service_.hooks().userSent.run(sent) == Flow::Stop) {
            return;
        }
        service_.router().route(std::move(e));
        return;
    }
    if (type.empty() || type == "unavailable") {
        // Presence broadcast (RFC 6121 §4.2, §4.4, §4.5); the roster module
        // adds the contacts, the core covers the user's own resources.
        bool available = type.empty();
        int priority = 0;
        if (const Element* p = e.findChild("priority", kClient)) {
            try {
                priority = std::clamp(std::stoi(p->text()), -128, 127);
            } catch (const std::exception&) {
                service_.router().bounce(
                    e, StanzaError(StanzaCondition::BadRequest, "priority must be an integer"));
                return;
            }
        }
        bool initial = available && !available_ && !everAvailable_;
        everAvailable_ = everAvailable_ || available;
        available_ = available;
        priority_ = priority;
        lastPresence_ = available ? std::make_shared<const Element>(e) : nullptr;
        service_.router().setPresence(jid_, available, priority);
        broadcastToOwnResources(e);
        service_.hooks().presenceChanged.run(PresenceChanged{this, jid_, available, priority, &e, initial});
    }
}

void C2sSession::broadcastToOwnResources(const Element& presence) {
    for (auto& r : service_.router().resources(jid_.bare())) {
        if (r.available || r.session.get() == this) {
            Element copy = presence;
            copy.setAttr("to", jid_.bare().withResource(r.resource).str());
            r.session->deliver(std::move(copy));
        }
    }
    if (presence.attr("type") == "unavailable" && !available_) {
        // Our own echo (RFC 6121 §4.5.2) when we were not in the table any more.
        if (state_ == State::Bound) {
            Element copy = presence;
            copy.setAttr("to", jid_.str());
            write(std::move(copy), nullptr);
        }
    }
}

void C2sSession::deliver(Element stanza) {
    deliverTracked(std::move(stanza), nullptr);
}

void C2sSession::deliverTracked(Element stanza, std::function<void(bool)> done) {
    deliverEntry(std::move(stanza), std::move(done), nullptr);
}

void C2sSession::deliverHeld(Element stanza, HandledToken handled) {
    deliverEntry(std::move(stanza), nullptr, std::move(handled));
}

void C2sSession::deliverEntry(Element stanza, std::function<void(bool)> done, HandledToken handled) {
    if (!worker_.inThisThread()) {
        worker_.post([self = std::static_pointer_cast<C2sSession>(shared_from_this()), s = std::move(stanza),
                      done = std::move(done), handled = std::move(handled)]() mutable {
            self->deliverEntry(std::move(s), std::move(done), std::move(handled));
        });
        return;
    }
    switch (state_) {
        case State::Bound:
        case State::Hibernating:
            write(std::move(stanza), std::move(done), std::move(handled));
            return;
        case State::Transferred:
            if (auto next = successor_.lock()) {
                // Always through the successor's queue: its smInstall() was
                // posted there before, so the stanza finds it installed even
                // when both sessions share this worker.
                next->worker().post([next, s = std::move(stanza), done = std::move(done),
                                     handled = std::move(handled)]() mutable {
                    next->deliverEntry(std::move(s), std::move(done), std::move(handled));
                });
                return;
            }
            [[fallthrough]];
        default:
            if (done) {
                done(false);
            } else if (stanza.name() == "message" && !redeliverToOtherResources(stanza)) {
                service_.router().deliveryFailed(stanza, jid_, FailureReason::SessionClosed,
                                                 std::move(handled));
            }
    }
}

bool C2sSession::holdWhileInactive(Element& stanza) {
    std::string_view type = stanza.attr("type");
    if (stanza.name() != "presence" || !(type.empty() || type == "unavailable")) {
        return false;
    }
    // Fold: only the newest presence of each sender matters to a sleeping client.
    std::string_view from = stanza.attr("from");
    for (auto& held : heldPresence_) {
        if (held.attr("from") == from) {
            held = std::move(stanza);
            return true;
        }
    }
    if (heldPresence_.size() >= kMaxHeldPresence) {
        flushHeld();
        return false;
    }
    heldPresence_.push_back(std::move(stanza));
    return true;
}

void C2sSession::flushHeld() {
    auto held = std::move(heldPresence_);
    heldPresence_.clear();
    bool inactive = csiInactive_;
    csiInactive_ = false;  // write them out now rather than hold them again
    for (auto& p : held) {
        write(std::move(p), nullptr);
    }
    csiInactive_ = inactive;
}

void C2sSession::write(Element stanza, std::function<void(bool)> done, HandledToken handled) {
    if (csiInactive_ && state_ == State::Bound) {
        if (!done && holdWhileInactive(stanza)) {
            return;
        }
        // Anything else is worth waking the client for; what was held goes first.
        if (!heldPresence_.empty()) {
            flushHeld();
        }
    }
    if (state_ == State::Bound) {
        send(stanza);
    }
    if (smEnabled_) {
        unacked_.push_back(
            Unacked{std::move(stanza), std::move(done), std::time(nullptr), std::move(handled)});
        if (state_ == State::Hibernating && unacked_.back().handled) {
            smPersistHeld(true);  // no device to wait for: durable now
        }
        if (unacked_.size() > service_.config().streamManagement.maxQueue) {
            spdlog::warn("c2s:{} {} never acknowledges: {} stanzas unacknowledged", id_, jid_.str(),
                         unacked_.size());
            streamError(StreamError{StreamCondition::PolicyViolation, "too many unacknowledged stanzas"});
            return;
        }
        // Ask for an acknowledgement at the end of each burst, with at most
        // one request in flight: the queue drains about once per round trip.
        if (state_ == State::Bound && !ackRequestInFlight_ && !ackRequestScheduled_) {
            ackRequestScheduled_ = true;
            worker_.post([self = std::static_pointer_cast<C2sSession>(shared_from_this())] {
                self->ackRequestScheduled_ = false;
                if (self->state_ == State::Bound && !self->unacked_.empty() && !self->ackRequestInFlight_) {
                    self->smRequestAck();
                }
            });
        }
    } else if (done) {
        done(true);  // no stream management: written is as accepted as it gets
    }
    if (state_ == State::Bound && transport_->pendingBytes() > service_.config().limits.maxOutboundBytes) {
        spdlog::warn("c2s:{} {} outbound queue over {} bytes, closing", id_, jid_.str(),
                     service_.config().limits.maxOutboundBytes);
        streamError(StreamError{StreamCondition::PolicyViolation, "too much data queued for this client"});
    }
}

}  // namespace xmppd
