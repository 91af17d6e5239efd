// XEP-0198 Stream Management for c2s sessions: acknowledgements, the
// unacknowledged queue, hibernation and resumption. Part of C2sSession.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>

#include "server/c2s/c2s_service.hpp"
#include "server/c2s/c2s_session.hpp"
#include "server/c2s/sm_counters.hpp"
#include "server/router.hpp"
#include "server/worker.hpp"
#include "xmpp/sasl/crypto.hpp"
#include "xmpp/serializer.hpp"

namespace xmppd {

using xmpp::Element;
using xmpp::Jid;
using xmpp::StreamCondition;
using xmpp::StreamError;

namespace {

constexpr std::string_view kSm = "urn:xmpp:sm:3";

std::string smFailed(std::string_view condition, std::optional<uint32_t> h = std::nullopt) {
    std::string out = "<failed xmlns='urn:xmpp:sm:3'";
    if (h) {
        out += " h='" + std::to_string(*h) + "'";
    }
    out += "><";
    out.append(condition).append(" xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    return out;
}

// XEP-0203 delay, so a client shows when an undelivered message was sent.
void stampDelay(Element& stanza, const std::string& from, std::time_t received) {
    if (stanza.findChild("delay", "urn:xmpp:delay")) {
        return;
    }
    std::tm tm{};
    gmtime_r(&received, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    stanza.addChild("delay", "urn:xmpp:delay").setAttr("from", from).setAttr("stamp", stamp);
}

}  // namespace

bool C2sSession::handleSmElement(Element& e) {
    const std::string& name = e.name();
    if (!service_.config().streamManagement.enabled) {
        return false;
    }
    if (name == "enable") {
        smEnable(e);
    } else if (name == "resume") {
        smResume(e);
    } else if (name == "r" && smEnabled_) {
        sendRaw("<a xmlns='urn:xmpp:sm:3' h='" + std::to_string(smHandledCount()) + "'/>");
    } else if (name == "a" && smEnabled_) {
        smAck(e);
    } else {
        return false;
    }
    return true;
}

void C2sSession::smEnable(const Element& e) {
    // XEP-0198 §3: only after resource binding, and only once.
    if (state_ != State::Bound || smEnabled_) {
        sendRaw(smFailed("unexpected-request"));
        return;
    }
    smEnabled_ = true;
    inReceived_ = 0;
    outAcked_ = 0;
    std::string reply = "<enabled xmlns='urn:xmpp:sm:3'";
    std::string_view resume = e.attr("resume");
    int timeout = service_.config().streamManagement.resumeTimeout;
    if ((resume == "true" || resume == "1") && timeout > 0) {
        smResumable_ = true;
        smId_ = xmpp::sasl::base64Encode(xmpp::sasl::randomBytes(18));
        service_.smRegister(smId_, std::static_pointer_cast<C2sSession>(shared_from_this()));
        reply += " id='" + smId_ + "' resume='true' max='" + std::to_string(timeout) + "'";
    }
    reply += "/>";
    sendRaw(reply);
}

uint32_t C2sSession::smHandledCount() const {
    return sm::handledCount(inReceived_, inUnhandled_);  // wraps at 2^32 as §4 requires
}

HandledToken C2sSession::smHandledToken() {
    if (!smEnabled_) {
        return nullptr;
    }
    uint64_t seq = ++inReceived_;
    inUnhandled_.insert(seq);
    std::weak_ptr<Session> weak = shared_from_this();
    Worker* worker = &worker_;
    // The deleter runs where the last holder lets go: here for a live
    // delivery, on a storage thread after an offline commit.
    return HandledToken(reinterpret_cast<void*>(1), [weak, worker, seq](void*) {
        auto mark = [weak, seq] {
            if (auto self = std::static_pointer_cast<C2sSession>(weak.lock())) {
                self->smMarkHandled(seq);
            }
        };
        if (worker->inThisThread()) {
            mark();
        } else {
            worker->post(mark);
        }
    });
}

void C2sSession::smMarkHandled(uint64_t seq) {
    inUnhandled_.erase(seq);
}

void C2sSession::smAck(const Element& e) {
    auto h = sm::parseH(e.attr("h"));
    if (!h) {
        streamError(StreamError{StreamCondition::UndefinedCondition, "invalid h"});
        return;
    }
    auto newlyAcked = sm::newlyAcked(*h, outAcked_, unacked_.size());  // modular: handles the wrap
    if (!newlyAcked) {
        // XEP-0198 §4: acknowledging more than was sent.
        streamError(StreamError{StreamCondition::UndefinedCondition, "handled-count-too-high"});
        return;
    }
    outAcked_ = *h;
    ackRequestInFlight_ = false;
    for (uint32_t i = 0; i < *newlyAcked; ++i) {
        auto entry = std::move(unacked_.front());
        unacked_.pop_front();
        smAccepted(entry);
    }
    // What was sent while our request was in flight needs a request of its own.
    if (!unacked_.empty() && state_ == State::Bound) {
        smRequestAck();
    }
}

void C2sSession::smAccepted(Unacked& u) {
    if (u.done) {
        u.done(true);
    }
    if (u.copy) {
        u.copy->discard();
    }
    u.handled.reset();  // the sender's 'h' may move
}

void C2sSession::smPersistHeld(bool all) {
    const std::time_t now = std::time(nullptr);
    const int grace = service_.config().streamManagement.ackGrace;
    // Oldest first: stop at the first one still within its grace.
    for (auto& u : unacked_) {
        if (!all && now - u.queuedAt < grace) {
            break;
        }
        if (!u.handled || u.copy) {
            continue;
        }
        DeliveryPending pending{&u.stanza, jid_.bare(), std::move(u.handled), nullptr, u.queuedAt};
        service_.hooks().deliveryPending.run(pending);
        u.copy = std::move(pending.copy);
        // A store that took the copy keeps the token until its commit; with
        // none, it is released here and the message lives in memory only.
    }
}

void C2sSession::smRequestAck() {
    ackRequestInFlight_ = true;
    lastAckRequest_ = Clock::now();
    sendRaw("<r xmlns='urn:xmpp:sm:3'/>");
}

void C2sSession::smFailUnacked() {
    auto queue = std::move(unacked_);
    unacked_.clear();
    for (auto& u : queue) {
        if (u.done) {
            u.done(false);  // its owner (e.g. offline storage) still has it
        } else if (u.copy) {
            // Already durable: it becomes an ordinary stored message, which
            // the offline module hands to the next session.
            u.copy->release();
        } else if (u.stanza.name() == "message") {
            // XEP-0203 §4: when the server received it, not when the session died.
            stampDelay(u.stanza, host_, u.queuedAt);
            if (!redeliverToOtherResources(u.stanza, u.handled)) {
                // The sender's 'h' (if it still waits) moves once this is stored.
                service_.router().deliveryFailed(u.stanza, jid_, FailureReason::SessionClosed,
                                                 std::move(u.handled));
            }
        }
    }
}

bool C2sSession::redeliverToOtherResources(Element& stanza, const HandledToken& handled) {
    std::string_view type = stanza.attr("type");
    if (!(type.empty() || type == "normal" || type == "chat")) {
        return false;  // headline, groupchat, error: what delivery_failed does with them today
    }
    int best = -1;
    auto all = service_.router().resources(jid_.bare());
    for (auto& r : all) {
        if (r.session.get() != this && r.available && r.priority >= 0) {
            best = std::max(best, r.priority);
        }
    }
    if (best < 0) {
        return false;  // no other available resource: offline storage
    }
    // RFC 6121 §8.5.2.1.1: a message to the bare JID went to every resource
    // of the highest priority. A resource at least as high as this one had
    // its own copy; another would be a duplicate.
    auto to = Jid::parse(stanza.attr("to"));
    if (to && to->isBare() && available_ && best >= priority_) {
        return true;
    }
    // §8.5.3.2.1: to a full JID without a session (now ours), a normal or
    // chat message is treated as sent to the bare JID: the highest-priority
    // available resources.
    for (auto& r : all) {
        if (r.session.get() != this && r.available && r.priority == best) {
            r.session->deliverHeld(stanza, handled);
        }
    }
    return true;
}

bool C2sSession::smHibernate() {
    if (!smResumable_) {
        return false;
    }
    state_ = State::Hibernating;
    hibernateUntil_ = Clock::now() + std::chrono::seconds(service_.config().streamManagement.resumeTimeout);
    smPersistHeld(true);  // no device to wait for: what its senders wait on becomes durable now
    spdlog::info("c2s:{} {} connection lost; resumable for {} s", id_, jid_.str(),
                 service_.config().streamManagement.resumeTimeout);
    return true;
}

std::optional<C2sSession::SmTransfer> C2sSession::smTakeOver(uint32_t h,
                                                             const std::shared_ptr<C2sSession>& successor) {
    if ((state_ != State::Bound && state_ != State::Hibernating) || !smResumable_) {
        return std::nullopt;
    }
    auto acked = sm::newlyAcked(h, outAcked_, unacked_.size());
    if (!acked) {
        return std::nullopt;
    }
    for (uint32_t i = 0; i < *acked; ++i) {
        smAccepted(unacked_.front());
        unacked_.pop_front();
    }
    outAcked_ = h;
    SmTransfer t;
    t.jid = jid_;
    t.available = available_;
    t.priority = priority_;
    t.presence = lastPresence_;
    t.id = smId_;
    t.previousId = id_;
    t.inHandled = smHandledCount();
    t.outAcked = outAcked_;
    t.unacked = std::move(unacked_);
    unacked_.clear();
    // Presence held for an inactive client (XEP-0352) was never sent: the
    // new connection gets it like the unacknowledged rest.
    for (auto& p : heldPresence_) {
        t.unacked.push_back(Unacked{std::move(p), nullptr, std::time(nullptr)});
    }
    heldPresence_.clear();
    bool connected = state_ == State::Bound;
    state_ = State::Transferred;
    successor_ = successor;
    if (connected) {
        // XEP-0198 §5: the old connection is simply dropped.
        transport_->setHandler(nullptr);
        transport_->close();
    }
    service_.sessionEnded(*this);
    return t;
}

void C2sSession::smResume(const Element& e) {
    auto h = sm::parseH(e.attr("h"));
    std::string previd(e.attr("previd"));
    if (state_ != State::Authenticated || !h || previd.empty()) {
        sendRaw(smFailed("unexpected-request"));
        return;
    }
    auto old = service_.smFind(previd);
    // Only the same account may resume a session (XEP-0198 §5).
    if (!old || old->jid().local() != scramUser_ || old->jid().domain() != host_) {
        sendRaw(smFailed("item-not-found"));
        return;
    }
    state_ = State::BindPending;
    auto self = std::static_pointer_cast<C2sSession>(shared_from_this());
    old->worker().post([old, self, h = *h] {
        auto state = old->smTakeOver(h, self);
        self->worker().post([self, state = std::move(state)]() mutable {
            if (!state) {
                self->state_ = State::Authenticated;
                self->sendRaw(smFailed("item-not-found"));
                return;
            }
            self->smInstall(std::move(*state));
        });
    });
}

void C2sSession::smInstall(SmTransfer t) {
    // We may have died while waiting: the old session is gone all the same,
    // so take its state and end it here as if its connection dropped now
    // (unbind, unacknowledged stanzas to delivery_failed, unavailable,
    // session_closed) rather than leave it bound with nobody behind it.
    bool alive = state_ == State::BindPending;
    jid_ = t.jid;
    available_ = t.available;
    everAvailable_ = t.available;
    priority_ = t.priority;
    lastPresence_ = t.presence;
    smEnabled_ = true;
    smResumable_ = alive;
    smId_ = alive ? t.id : std::string();
    inReceived_ = t.inHandled;
    outAcked_ = t.outAcked;
    auto self = std::static_pointer_cast<C2sSession>(shared_from_this());
    if (alive) {
        service_.smRegister(smId_, self);
    }
    // Before the router points at us: a module that follows the session by
    // id (offline delivery) must know the successor before it can see it.
    service_.hooks().sessionResumed.run(SessionResumed{this, t.previousId, jid_});
    service_.router().bind(jid_, self);  // replaces the old session's entry
    service_.router().setPresence(jid_, available_, priority_);
    service_.router().setLastPresence(jid_, lastPresence_);
    if (!alive) {
        unacked_ = std::move(t.unacked);
        state_ = State::Hibernating;  // nothing to write to; cleanup() does the rest
        cleanup();
        return;
    }
    state_ = State::Bound;
    sendRaw("<resumed xmlns='urn:xmpp:sm:3' h='" + std::to_string(static_cast<uint32_t>(inReceived_)) +
            "' previd='" + smId_ + "'/>");
    spdlog::info("c2s:{} resumed {} with {} unacknowledged stanzas", id_, jid_.str(), t.unacked.size());
    // §5: resend everything the client has not acknowledged, in order.
    for (auto& entry : t.unacked) {
        send(entry.stanza);
        unacked_.push_back(std::move(entry));
    }
    if (!unacked_.empty()) {
        smRequestAck();
    }
}

}  // namespace xmppd
