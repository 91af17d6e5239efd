#pragma once

// The hooks catalog: every hook of the server as a C++ type. Modules
// subscribe with a priority band; lower runs first, ties in registration
// order. Two shapes:
//  - FoldHook: handlers see a mutable argument and return Continue or Stop;
//  - NotifyHook: observers.
// Handlers are added and removed while the server starts or stops a module,
// never concurrently with traffic (live reload will swap whole snapshots).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/handled_token.hpp"
#include "xmpp/element.hpp"
#include "xmpp/jid.hpp"

namespace xmppd {

class Session;

enum class Band : int { Validate = 100, Policy = 200, Default = 300, Store = 400, Fallback = 500 };
enum class Flow { Continue, Stop };

// Logs and skips a handler that throws; implemented in hooks.cpp.
void reportHookFailure(const std::string& hook, const std::string& module, const char* what);

template <typename Arg>
class FoldHook {
  public:
    using Handler = std::function<Flow(Arg&)>;
    explicit FoldHook(std::string name) : name_(std::move(name)) {}

    uint64_t add(Band band, int offset, std::string module, Handler fn) {
        Entry e{static_cast<int>(band) + offset, nextId_++, std::move(module), std::move(fn)};
        auto it = entries_.begin();
        while (it != entries_.end() && it->priority <= e.priority) {
            ++it;
        }
        entries_.insert(it, std::move(e));
        return nextId_ - 1;
    }
    void remove(uint64_t id) {
        std::erase_if(entries_, [id](const Entry& e) { return e.id == id; });
    }

    // Runs the handlers in order until one stops; returns Stop if one did.
    Flow run(Arg& arg) const {
        for (const auto& e : entries_) {
            try {
                if (e.fn(arg) == Flow::Stop) {
                    return Flow::Stop;
                }
            } catch (const std::exception& ex) {
                reportHookFailure(name_, e.module, ex.what());
            } catch (...) {
                reportHookFailure(name_, e.module, "unknown exception");
            }
        }
        return Flow::Continue;
    }
    bool empty() const { return entries_.empty(); }

  private:
    struct Entry {
        int priority;
        uint64_t id;
        std::string module;
        Handler fn;
    };
    std::string name_;
    std::vector<Entry> entries_;
    uint64_t nextId_ = 1;
};

template <typename Arg>
class NotifyHook {
  public:
    using Handler = std::function<void(const Arg&)>;
    explicit NotifyHook(std::string name) : fold_(std::move(name)) {}
    uint64_t add(Band band, int offset, std::string module, Handler fn) {
        return fold_.add(band, offset, std::move(module), [fn = std::move(fn)](const Arg& a) {
            fn(a);
            return Flow::Continue;
        });
    }
    void remove(uint64_t id) { fold_.remove(id); }
    void run(const Arg& arg) const { fold_.run(arg); }

  private:
    FoldHook<const Arg> fold_;
};

// ---- Hook arguments ----

// A stanza addressed to a local user (bare or full JID), before delivery.
// Handlers may rewrite it or stop it (e.g. blocking, privacy, archive).
struct StanzaInbound {
    xmpp::Element* stanza;
    xmpp::Jid from;
    xmpp::Jid to;
    // The sender's token: a handler that stops the stanza to route it again
    // later (Router::route) passes it on, so the sender's 'h' waits for that.
    HandledToken handled;
};

// A stanza a local user's session sent, after 'from' was checked and
// stamped, before routing. Handlers may rewrite or stop it (carbons' sent
// copies, the sender's archive).
struct UserSent {
    xmpp::Element* stanza;
    xmpp::Jid from;  // the sender's full JID
    Session* session;
};

enum class FailureReason { NoResource, SessionClosed, QueueOverflow };

// A message that could not be handed to any session of its recipient.
// Offline storage subscribes in the Store band; the core's default in the
// Fallback band bounces it with <service-unavailable/> (RFC 6121 §8.5.2.2.1).
struct DeliveryFailed {
    xmpp::Element* stanza;
    xmpp::Jid to;
    FailureReason reason;
    HandledToken handled;
};

// A stored copy of a message that is still on its way to a device; see
// DeliveryPending. Both calls come once at most, from the session's worker.
class PendingCopy {
  public:
    virtual ~PendingCopy() = default;
    // The device acknowledged the message: the copy is not needed.
    virtual void discard() = 0;
    // The session ended without an acknowledgement: the copy becomes an
    // ordinary stored message for the next session.
    virtual void release() = 0;
};

// Durable before acknowledged, for live deliveries (shared/DESIGN.md): a
// message written to a XEP-0198 session holds its sender's HandledToken
// until the device acknowledges it. When that takes longer than
// stream_management.ack_grace (a sleeping phone, a hibernating session),
// the session asks for a durable copy: a store takes `handled` (released
// after its commit, so the sender's 'h' moves only then) and sets `copy`.
// No taker: the token is released and the message stays in memory only.
struct DeliveryPending {
    const xmpp::Element* stanza;
    xmpp::Jid to;  // the recipient's bare JID
    HandledToken handled;
    std::shared_ptr<PendingCopy> copy;
    int64_t receivedAt;  // unix seconds, for the copy's XEP-0203 stamp
};

struct SessionEvent {
    Session* session;
    xmpp::Jid jid;
};

// XEP-0198 §5: a new connection's session took over a hibernating (or
// still connected) session. Runs on the new session's worker before the
// router points the full JID at it; the old session never sees
// session_closed, so state kept per session id moves here.
struct SessionResumed {
    Session* session;  // the successor
    uint64_t previousId;
    xmpp::Jid jid;  // the same full JID as before
};

// Initial or updated available presence, or unavailable (RFC 6121 §4).
struct PresenceChanged {
    Session* session;
    xmpp::Jid jid;
    bool available;
    int priority;
    const xmpp::Element* presence;
    bool initial;  // the session's first available presence (RFC 6121 §4.2)
};

struct AccountEvent {
    std::string host;
    std::string username;
};

// A user's block list changed (XEP-0191 §3.3, §3.4), after the commit and
// after the new list took effect: `jids` were blocked, or unblocked (for
// "unblock all", every JID the list held).
struct BlocklistChanged {
    xmpp::Jid user;  // bare
    std::vector<xmpp::Jid> jids;
    bool blocked;
};

// Asks the roster module about `contact` in `user`'s roster:
//  - Subscribed: may contact see user's presence, a subscription 'from' or
//    'both' (RFC 6121 §4; XEP-0012 §4);
//  - InRoster: is contact an item of the roster at all (RFC 6121 §2.1.1:
//    not a pending-only entry; XEP-0313 §7 preference 'roster').
// The roster module, which owns subscriptions, takes the query (Stop) and
// calls answer exactly once, later, from a storage thread: true or false, or
// nullopt when it could not tell (storage). If no handler takes it, the
// answer is false.
struct SubscriptionQuery {
    enum class Question { Subscribed, InRoster };
    xmpp::Jid user;     // bare
    xmpp::Jid contact;  // bare
    std::function<void(std::optional<bool> answer)> answer;
    Question question = Question::Subscribed;
};

struct Hooks {
    FoldHook<StanzaInbound> stanzaInbound{"stanza_inbound"};
    FoldHook<UserSent> userSent{"user_sent"};
    // Presence a local user's session sent (broadcast or directed), after
    // 'from' was checked and stamped, before the core broadcasts or routes
    // it. Handlers may rewrite it (XEP-0153 avatar hash) or stop it
    // (XEP-0191 blocking).
    FoldHook<UserSent> presenceOutbound{"presence_outbound"};
    FoldHook<DeliveryFailed> deliveryFailed{"delivery_failed"};
    FoldHook<DeliveryPending> deliveryPending{"delivery_pending"};
    NotifyHook<SessionEvent> sessionBound{"session_bound"};
    NotifyHook<SessionEvent> sessionClosed{"session_closed"};
    NotifyHook<SessionResumed> sessionResumed{"session_resumed"};
    NotifyHook<PresenceChanged> presenceChanged{"presence_changed"};
    NotifyHook<AccountEvent> accountCreated{"account_created"};
    NotifyHook<AccountEvent> accountRemoved{"account_removed"};
    // Observed by the roster, which owns presence subscriptions: a blocked
    // subscriber gets the user's unavailable, an unblocked one the current
    // presence.
    NotifyHook<BlocklistChanged> blocklistChanged{"blocklist_changed"};
    FoldHook<SubscriptionQuery> subscriptionQuery{"subscription_query"};
};

}  // namespace xmppd
