#include "tests/bench/xmpp_conn.hpp"

#include "tests/bench/bench_util.hpp"

namespace bench {

namespace {

constexpr std::string_view kSaslNs = "urn:ietf:params:xml:ns:xmpp-sasl";

// The character data of an element without children (SASL payloads).
std::string_view elementText(std::string_view e) {
    size_t open = e.find('>');
    if (open == std::string_view::npos || e[open - 1] == '/') {
        return {};
    }
    size_t close = e.rfind("</");
    if (close == std::string_view::npos || close < open) {
        return {};
    }
    return e.substr(open + 1, close - open - 1);
}

// The name of the first child element (the condition of an error or failure).
std::string_view firstChildName(std::string_view e) {
    size_t open = e.find('>');
    if (open == std::string_view::npos || e[open - 1] == '/') {
        return {};
    }
    size_t child = e.find('<', open);
    if (child == std::string_view::npos || e[child + 1] == '/') {
        return {};
    }
    return tagName(e.substr(child));
}

bool endsWith(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

XmppConn::XmppConn(Loop& loop, SSL_CTX* tls, const XmppSettings& settings, XmppEvents& events, int index)
    : Conn(loop, tls), settings_(settings), events_(events), index_(index) {}

const char* XmppConn::phaseName() const {
    switch (phase_) {
        case Phase::Idle:
            return "idle";
        case Phase::Connecting:
            return isTls() ? "tls-handshake" : "connecting";
        case Phase::StreamOpen:
            return authenticated_ ? "stream-open (after SASL)"
                   : tlsDone_     ? "stream-open (after TLS)"
                                  : "stream-open";
        case Phase::Features:
            return authenticated_ ? "features (after SASL)" : tlsDone_ ? "features (after TLS)" : "features";
        case Phase::Proceed:
            return isTls() ? "tls-handshake" : "starttls";
        case Phase::Sasl:
            return "sasl";
        case Phase::Bind:
            return "bind";
        case Phase::Session:
            return "session";
        case Phase::Barrier:
            return "presence-ping";
        case Phase::Ready:
            return "ready";
    }
    return "?";
}

void XmppConn::login(std::string user, std::string password, bool presence, uint32_t srcAddr) {
    user_ = std::move(user);
    password_ = std::move(password);
    bareJid_ = user_ + "@" + settings_.domain;
    fullJid_.clear();
    presence_ = presence;
    tlsDone_ = authenticated_ = sessionRequired_ = smRequested_ = false;
    smInbound_ = 0;
    scram_.reset();
    in_.clear();
    scanner_.restart();
    loginStarted_ = nowNs();
    phase_ = Phase::Connecting;
    connectTo(settings_.server, srcAddr);
}

void XmppConn::logout() {
    if (isOpen()) {
        send("</stream:stream>");
        flush();
    }
    close();
    phase_ = Phase::Idle;
}

void XmppConn::onConnected() {
    if (settings_.tls == TlsMode::Direct) {
        startTls(settings_.domain.c_str());
        return;
    }
    phase_ = Phase::StreamOpen;
    sendHeader();
}

void XmppConn::onTlsReady() {
    tlsDone_ = true;
    in_.clear();
    scanner_.restart();
    phase_ = Phase::StreamOpen;
    sendHeader();
}

void XmppConn::sendHeader() {
    std::string h = "<?xml version='1.0'?><stream:stream to='";
    h += settings_.domain;
    h += "' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' "
         "xml:lang='en'>";
    send(h);
}

void XmppConn::onBytes(std::string_view bytes) {
    stopScan_ = false;
    if (in_.empty()) {
        size_t used = scanner_.scan(bytes, *this);
        if (isOpen() && !stopScan_) {
            in_.assign(bytes.substr(used));
        }
        return;
    }
    in_.append(bytes);
    // Scan a copy of the view: onItem never touches in_ while the connection stays open.
    size_t used = scanner_.scan(in_, *this);
    if (isOpen() && !stopScan_) {
        in_.erase(0, used);
    }
}

void XmppConn::onDisconnect(std::string_view why) {
    phase_ = Phase::Idle;
    events_.onFailed(*this, why);
}

bool XmppConn::failWith(std::string why) {
    fail(why);
    return false;
}

bool XmppConn::onItem(ScanKind kind, std::string_view bytes) {
    if (kind == ScanKind::StreamOpen) {
        if (phase_ == Phase::StreamOpen) {
            phase_ = Phase::Features;
        }
        return true;
    }
    if (kind == ScanKind::StreamClose) {
        return failWith("the server closed the stream");
    }
    std::string_view name = tagName(bytes);
    if (endsWith(name, ":error") && name.substr(0, 6) == "stream") {
        return failWith("stream error: " + std::string(firstChildName(bytes)));
    }
    switch (phase_) {
        case Phase::Features:
            if (endsWith(name, "features")) {
                return onFeatures(bytes);
            }
            return true;
        case Phase::Proceed:
            if (name == "proceed") {
                stopScan_ = true;  // what follows is TLS
                in_.clear();
                startTls(settings_.domain.c_str());
                return false;
            }
            return failWith("STARTTLS refused");
        case Phase::Sasl:
            return onSasl(bytes);
        case Phase::Bind:
        case Phase::Session:
            if (name == "iq") {
                return onBound(bytes);
            }
            return true;
        case Phase::Barrier:
            if (name == "iq" && attrValue(bytes, "id") == "ready") {
                phase_ = Phase::Ready;
                events_.onReady(*this);
                return isOpen();
            }
            [[fallthrough]];
        case Phase::Ready:
            if (smRequested_) {
                if (name == "message" || name == "presence" || name == "iq") {
                    ++smInbound_;
                } else if (name == "r") {
                    send("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(smInbound_) + "'/>");
                    return true;
                }
            }
            if (name == "iq") {
                std::string_view type = attrValue(bytes, "type");
                if (type == "get" || type == "set") {
                    answerIq(bytes);
                    return true;
                }
            }
            events_.onStanza(*this, bytes);
            return isOpen();
        default:
            return true;
    }
}

bool XmppConn::onFeatures(std::string_view f) {
    if (!tlsDone_ && settings_.tls == TlsMode::StartTls) {
        if (f.find("<starttls") == std::string_view::npos) {
            return failWith("the server offers no STARTTLS");
        }
        send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
        phase_ = Phase::Proceed;
        return true;
    }
    if (!authenticated_) {
        const std::string& mech = settings_.mechanism;
        if (f.find(">" + mech + "<") == std::string_view::npos) {
            return failWith("the server does not offer " + mech);
        }
        std::string initial;
        if (mech == "PLAIN") {
            initial = std::string(1, '\0') + user_ + std::string(1, '\0') + password_;
        } else {
            scram_ = std::make_unique<ScramClient>(
                mech == "SCRAM-SHA-1" ? ScramHash::Sha1 : ScramHash::Sha256, user_, password_);
            initial = scram_->clientFirst();
        }
        std::string auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech + "'>";
        auth += base64Encode(initial);
        auth += "</auth>";
        send(auth);
        phase_ = Phase::Sasl;
        return true;
    }
    sessionRequired_ = f.find("urn:ietf:params:xml:ns:xmpp-session") != std::string_view::npos &&
                       f.find("<optional") == std::string_view::npos;
    std::string bind =
        "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>load" +
        std::to_string(index_) + "</resource></bind></iq>";
    send(bind);
    phase_ = Phase::Bind;
    return true;
}

bool XmppConn::onSasl(std::string_view e) {
    std::string_view name = tagName(e);
    if (attrValue(e, "xmlns") != kSaslNs) {
        return true;
    }
    if (name == "challenge") {
        auto data = base64Decode(elementText(e));
        auto response = (scram_ && data) ? scram_->clientFinal(*data) : std::nullopt;
        if (!response) {
            return failWith("bad SCRAM challenge");
        }
        send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64Encode(*response) + "</response>");
        return true;
    }
    if (name == "success") {
        if (scram_) {
            auto data = base64Decode(elementText(e));
            if (!data || !scram_->verifyServerFinal(*data)) {
                return failWith("the server's SCRAM signature does not verify");
            }
            scram_.reset();
        }
        authenticated_ = true;
        scanner_.restart();  // RFC 6120 §6.4.6: a new stream follows success
        phase_ = Phase::StreamOpen;
        sendHeader();
        return true;
    }
    if (name == "failure") {
        return failWith("SASL failure: " + std::string(firstChildName(e)));
    }
    return true;
}

bool XmppConn::onBound(std::string_view iq) {
    std::string_view id = attrValue(iq, "id");
    std::string_view type = attrValue(iq, "type");
    if (id != "bind" && id != "sess") {
        return true;
    }
    if (type != "result") {
        size_t error = iq.find("<error");
        std::string_view condition = error == std::string_view::npos ? "" : firstChildName(iq.substr(error));
        return failWith(std::string(id == "bind" ? "bind" : "session") +
                        " failed: " + std::string(condition));
    }
    if (id == "bind") {
        fullJid_ = std::string(childText(iq, "jid"));
        if (fullJid_.empty()) {
            return failWith("bind result without a JID");
        }
        if (sessionRequired_) {
            send("<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>");
            phase_ = Phase::Session;
            return true;
        }
    }
    afterBind();
    return true;
}

void XmppConn::afterBind() {
    if (presence_) {
        sendPresence();
    }
    // The answer comes after the server has handled everything we sent before it.
    send("<iq type='get' id='ready' to='" + settings_.domain + "'><ping xmlns='urn:xmpp:ping'/></iq>");
    phase_ = Phase::Barrier;
}

void XmppConn::enableStreamManagement() {
    smRequested_ = true;
    smInbound_ = 0;
    send("<enable xmlns='urn:xmpp:sm:3'/>");
}

void XmppConn::answerIq(std::string_view iq) {
    std::string out = "<iq id='";
    out += attrValue(iq, "id");
    std::string_view from = attrValue(iq, "from");
    if (!from.empty()) {
        out += "' to='";
        out += from;
    }
    if (iq.find("urn:xmpp:ping") != std::string_view::npos) {
        out += "' type='result'/>";
    } else {
        out +=
            "' type='error'><error type='cancel'><service-unavailable "
            "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>";
    }
    send(out);
}

}  // namespace bench
