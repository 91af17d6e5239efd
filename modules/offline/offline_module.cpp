#include "modules/offline/offline_module.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <unordered_map>

#include "modules/offline/store.hpp"
#include "server/router.hpp"
#include "server/session.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/serializer.hpp"
#include "xmpp/stream_parser.hpp"

namespace xmppd::modules {

using xmpp::Element;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

// Stored messages handed to a session before waiting for its acks.
constexpr int64_t kDeliveryChunk = 100;

int64_t nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string isoStamp(int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// XEP-0160 §3 and XEP-0334: what is worth keeping for later. Bodies, and
// the receipts and markers that make the sender's ticks (XEP-0184,
// XEP-0333), unless the sender said not to; anything with a store hint.
bool worthStoring(const Element& m) {
    if (m.findChild("no-store", "urn:xmpp:hints") || m.findChild("no-permanent-store", "urn:xmpp:hints")) {
        return false;
    }
    return m.findChild("body", m.ns()) || m.findChild("store", "urn:xmpp:hints") ||
           m.findChild("received", "urn:xmpp:receipts") || m.firstChildInNs("urn:xmpp:chat-markers:0") ||
           m.firstChildInNs("urn:xmpp:omemo:2") || m.firstChildInNs("eu.siacs.conversations.axolotl");
}

}  // namespace

struct OfflineModule::Impl : std::enable_shared_from_this<OfflineModule::Impl> {
    Router* router = nullptr;
    storage::Pool* pool = nullptr;
    int64_t maxMessages = 1000;
    int64_t batchSize = 256;
    bool durableAck = true;

    // Group commit: appends that arrive while a batch is being written wait
    // for the next batch, and each batch is one transaction (one fsync).
    struct HeldCopy;
    struct Pending {
        std::string host, user, sender, xml;
        int64_t now;
        Element stanza;                            // for the bounce when it cannot be stored
        HandledToken handled;                      // released after the commit: then the sender's h moves
        std::shared_ptr<HeldCopy> held = nullptr;  // a copy of a live delivery (DeliveryPending)
    };

    // This run's id: copies it holds for live deliveries carry it, so this
    // run skips them and a run after a crash delivers them.
    const int64_t boot = [] {
        std::random_device rd;
        int64_t b = (static_cast<int64_t>(rd()) << 31) ^ static_cast<int64_t>(rd());
        return b == 0 ? 1 : b;
    }();
    std::mutex mutex;
    std::vector<Pending> pending;
    bool scheduled = false;

    // Per full JID: the session that was given (or waits for) its stored
    // messages, and the delivery chain handing them over. Keyed by JID, not
    // by session, so that the chain follows a XEP-0198 resumption (same
    // JID, new session id, session_resumed) instead of stalling on the old
    // session and refetching from the start on the next presence.
    struct Flush {
        uint64_t session = 0;
        uint64_t previous = 0;  // the session it resumed, until the router points at the new one
        uint64_t chain = 0;     // 0: initial presence had a negative priority, nothing fetched yet
        bool active = false;    // a chunk is being fetched or waits for the client's acks
        bool recheck = false;   // a commit came in while active: fetch once more at the end
        int64_t cursor = 0;     // highest id handed over (kept ones are not handed over again)
    };
    std::unordered_map<std::string, Flush> flushed;
    uint64_t nextChain = 0;

    void append(Pending p) {
        std::lock_guard lock(mutex);
        pending.push_back(std::move(p));
        if (!scheduled) {
            scheduled = true;
            schedule();
        }
    }

    // Called with mutex held.
    void schedule() {
        auto self = shared_from_this();
        if (!pool->submit([self](storage::Connection& c) { self->writeBatch(c); })) {
            // The storage queue is full: answer every waiting message now.
            auto failed = std::move(pending);
            pending.clear();
            scheduled = false;
            for (auto& p : failed) {
                if (p.held) {
                    std::lock_guard held(p.held->mutex);
                    p.held->state = HeldCopy::State::Failed;  // delivered live, in memory only
                    continue;
                }
                router->bounce(p.stanza,
                               StanzaError(StanzaCondition::ResourceConstraint, "offline storage is busy"));
            }
        }
    }

    // The copy a session asked for; it tells us when it is no longer needed.
    struct HeldCopy final : PendingCopy {
        std::weak_ptr<Impl> impl;
        xmpp::Jid user;  // bare
        std::mutex mutex;
        enum class State { Waiting, Stored, Failed } state = State::Waiting;
        int64_t id = 0;
        bool discarded = false;
        bool released = false;

        void discard() override { settle(true); }
        void release() override { settle(false); }
        void settle(bool discard) {
            {
                std::lock_guard lock(mutex);
                if (state == State::Waiting) {
                    (discard ? discarded : released) = true;  // writeBatch applies it after the commit
                    return;
                }
                if (state == State::Failed) {
                    return;
                }
            }
            if (auto self = impl.lock()) {
                self->settleHeld(user, id, discard);
            }
        }
    };

    void settleHeld(const xmpp::Jid& user, int64_t id, bool discard) {
        auto self = shared_from_this();
        bool ok = pool->submit([self, user, id, discard](storage::Connection& c) {
            try {
                if (discard) {
                    offline::store::discardHeld(c, id);
                } else {
                    offline::store::releaseHeld(c, id);
                    self->kickChains(user);
                }
            } catch (const storage::Error& e) {
                // Kept as it is: a discarded copy may then come once more at a
                // later login, which is better than a lost one.
                spdlog::error("offline: settling held copy {} of {} failed: {}", id, user.str(), e.what());
            }
        });
        if (!ok) {
            spdlog::warn("offline: storage busy; held copy {} of {} stays as it is", id, user.str());
        }
    }

    // DeliveryPending: a durable copy of a message on its way to a device.
    bool onDeliveryPending(DeliveryPending& d) {
        const Element& m = *d.stanza;
        auto xml = storedForm(m, d.to, d.receivedAt);
        if (!xml) {
            return false;
        }
        auto copy = std::make_shared<HeldCopy>();
        copy->impl = weak_from_this();
        copy->user = d.to;
        d.copy = copy;
        Pending p{d.to.domain(), d.to.local(), std::string(m.attr("from")), std::move(*xml),
                  d.receivedAt,  Element(),    std::move(d.handled),        std::move(copy)};
        append(std::move(p));
        return true;
    }

    void writeBatch(storage::Connection& c) {
        std::vector<Pending> batch;
        {
            std::lock_guard lock(mutex);
            size_t n = std::min(pending.size(), static_cast<size_t>(batchSize));
            batch.assign(std::make_move_iterator(pending.begin()),
                         std::make_move_iterator(pending.begin() + n));
            pending.erase(pending.begin(), pending.begin() + n);
        }
        std::vector<offline::AppendResult> results;
        std::vector<int64_t> ids(batch.size(), 0);
        bool ok = true;
        try {
            storage::Transaction tx(c);
            offline::store::BatchAppender appender(c, maxMessages);
            for (size_t i = 0; i < batch.size(); ++i) {
                auto& p = batch[i];
                results.push_back(
                    appender.append(p.host, p.user, p.sender, p.now, p.xml, p.held ? boot : 0, &ids[i]));
            }
            tx.commit();
        } catch (const storage::Error& e) {
            spdlog::error("offline: storing {} messages failed: {}", batch.size(), e.what());
            ok = false;
        }
        for (size_t i = 0; i < batch.size(); ++i) {
            auto& p = batch[i];
            if (p.held) {
                settleAfterCommit(c, *p.held, ok && results[i] == offline::AppendResult::Stored, ids[i]);
                p.handled.reset();  // durable, or as durable as it gets: the sender may be acked
                continue;           // delivered live: never bounced, never handed to a chain here
            }
            if (!ok) {
                router->bounce(p.stanza, StanzaError(StanzaCondition::ResourceConstraint,
                                                     "offline storage is unavailable"));
            } else if (results[i] == offline::AppendResult::NoSuchUser) {
                router->bounce(p.stanza, StanzaError(StanzaCondition::ServiceUnavailable));
            } else if (results[i] == offline::AppendResult::QuotaExceeded) {
                router->bounce(p.stanza, StanzaError(StanzaCondition::ServiceUnavailable,
                                                     "the recipient's offline storage is full"));
            }
            p.handled.reset();  // durable (or answered): the sender may now be acked
        }
        // A recipient whose initial presence fetched before this commit would
        // otherwise find these messages only at its next login.
        std::set<std::pair<std::string, std::string>> recipients;
        for (size_t i = 0; ok && i < batch.size(); ++i) {
            if (results[i] == offline::AppendResult::Stored && !batch[i].held) {
                recipients.emplace(batch[i].user, batch[i].host);
            }
        }
        for (auto& [user, host] : recipients) {
            if (auto bare = xmpp::Jid::fromParts(user, host, "")) {
                kickChains(*bare);
            }
        }
        std::lock_guard lock(mutex);
        if (!pending.empty()) {
            schedule();
        } else {
            scheduled = false;
        }
    }

    // A held copy's commit is known: apply what its session said meanwhile.
    void settleAfterCommit(storage::Connection& c, HeldCopy& h, bool stored, int64_t id) {
        bool discard = false;
        bool release = false;
        {
            std::lock_guard lock(h.mutex);
            h.state = stored ? HeldCopy::State::Stored : HeldCopy::State::Failed;
            h.id = id;
            discard = stored && h.discarded;
            release = stored && h.released;
        }
        if (!stored) {
            // Over quota or no storage: the message is in the session's
            // memory only, as it would be without this module.
            spdlog::warn("offline: no durable copy of a message on its way to {}", h.user.str());
            return;
        }
        try {
            if (discard) {
                offline::store::discardHeld(c, id);
            } else if (release) {
                offline::store::releaseHeld(c, id);
                kickChains(h.user);
            }
        } catch (const storage::Error& e) {
            spdlog::error("offline: settling held copy {} of {} failed: {}", id, h.user.str(), e.what());
        }
    }

    // The message as it is stored: with a XEP-0203 delay stamped `received`
    // unless it has one; nullopt when it is not kept for later (XEP-0160 §3).
    static std::optional<std::string> storedForm(const Element& m, const xmpp::Jid& to, int64_t received) {
        std::string_view type = m.attr("type");
        if (m.name() != "message" || !(type.empty() || type == "normal" || type == "chat") ||
            !worthStoring(m)) {
            return std::nullopt;
        }
        Element stored = m;
        if (!stored.findChild("delay", "urn:xmpp:delay")) {
            stored.addChild("delay", "urn:xmpp:delay")
                .setAttr("from", to.domain())
                .setAttr("stamp", isoStamp(received));
        }
        return xmpp::toString(stored, xmpp::ns::kClient);
    }

    bool onDeliveryFailed(DeliveryFailed& f) {
        Element& m = *f.stanza;
        auto xml = storedForm(m, f.to, nowSeconds());
        if (!xml) {
            return false;
        }
        // durable_ack off (benchmarks only): the sender's XEP-0198 ack no
        // longer waits for the commit.
        HandledToken handled = durableAck ? std::move(f.handled) : nullptr;
        Pending p{f.to.domain(), f.to.local(), std::string(m.attr("from")), std::move(*xml),
                  nowSeconds(),  std::move(m), std::move(handled)};
        append(std::move(p));
        return true;
    }

    // Available presence (RFC 6121 §4.2, XEP-0160 §3): the session's first
    // available presence with a non-negative priority gets the stored
    // messages, once. A resumed session carries its entry over, so its later
    // presence updates fetch nothing again.
    void onPresence(const PresenceChanged& p) {
        if (!p.available) {
            return;
        }
        uint64_t chain = 0;
        {
            std::lock_guard lock(mutex);
            auto it = flushed.find(p.jid.str());
            if (it == flushed.end() || it->second.session != p.session->id()) {
                if (!p.initial) {
                    return;  // not a new session (resumed, or after unavailable)
                }
                it = flushed.insert_or_assign(p.jid.str(), Flush{p.session->id()}).first;
            }
            Flush& f = it->second;
            if (f.chain != 0 || p.priority < 0) {
                return;
            }
            f.chain = chain = ++nextChain;
            f.active = true;
        }
        deliverChunk(p.jid, chain, 0);
    }

    void onResumed(const SessionResumed& r) {
        std::lock_guard lock(mutex);
        auto it = flushed.find(r.jid.str());
        if (it != flushed.end() && it->second.session == r.previousId) {
            it->second.previous = r.previousId;
            it->second.session = r.session->id();
        }
    }

    void onClosed(const SessionEvent& e) {
        std::lock_guard lock(mutex);
        auto it = flushed.find(e.jid.str());
        if (it != flushed.end() && it->second.session == e.session->id()) {
            flushed.erase(it);
        }
    }

    // The session that chain delivers to now: whatever the router has bound
    // to the JID, if that is still the chain's session (or the one it
    // resumed, which forwards to its successor).
    std::shared_ptr<Session> chainSession(const xmpp::Jid& jid, uint64_t chain) {
        for (auto& r : router->resources(jid.bare())) {
            if (r.resource != jid.resource()) {
                continue;
            }
            std::lock_guard lock(mutex);
            auto it = flushed.find(jid.str());
            if (it != flushed.end() && it->second.chain == chain &&
                (r.session->id() == it->second.session || r.session->id() == it->second.previous)) {
                return r.session;
            }
        }
        return nullptr;
    }

    // The chain has nothing more in hand. A commit that came in meanwhile
    // (recheck) may have stored something the last fetch did not see.
    void chainDone(const xmpp::Jid& jid, uint64_t chain, int64_t cursor, bool stopped) {
        {
            std::lock_guard lock(mutex);
            auto it = flushed.find(jid.str());
            if (it == flushed.end() || it->second.chain != chain) {
                return;
            }
            Flush& f = it->second;
            f.cursor = std::max(f.cursor, cursor);
            if (stopped || !f.recheck) {
                f.active = false;
                f.recheck = false;
                return;
            }
            f.recheck = false;
        }
        deliverChunk(jid, chain, cursor);
    }

    // After a commit: the recipient may have become available, and been
    // given its stored messages, while the message waited for its batch.
    // Its chain fetches again (from its cursor, so nothing comes twice).
    void kickChains(const xmpp::Jid& bare) {
        std::vector<std::pair<xmpp::Jid, std::pair<uint64_t, int64_t>>> start;
        for (auto& r : router->resources(bare)) {
            if (!r.available || r.priority < 0) {
                continue;
            }
            xmpp::Jid full = bare.withResource(r.resource);
            std::lock_guard lock(mutex);
            auto it = flushed.find(full.str());
            if (it == flushed.end() || it->second.chain == 0 ||
                (r.session->id() != it->second.session && r.session->id() != it->second.previous)) {
                continue;
            }
            Flush& f = it->second;
            if (f.active) {
                f.recheck = true;
            } else {
                f.active = true;
                start.push_back({full, {f.chain, f.cursor}});
            }
        }
        for (auto& [full, state] : start) {
            deliverChunk(full, state.first, state.second);
        }
    }

    // Hands stored messages over a chunk at a time, the next chunk once the
    // client has settled (acked) the previous one: a long backlog never
    // overruns the session's XEP-0198 queue (stream_management.max_queue).
    void deliverChunk(xmpp::Jid jid, uint64_t chain, int64_t afterId) {
        auto self = shared_from_this();
        bool submitted = pool->submit([self, jid, chain, afterId](storage::Connection& c) {
            std::vector<offline::StoredMessage> messages;
            try {
                messages =
                    offline::store::fetch(c, jid.domain(), jid.local(), kDeliveryChunk, afterId, self->boot);
            } catch (const storage::Error& e) {
                spdlog::warn("offline: fetching for {} failed: {}", jid.bareStr(), e.what());
                self->chainDone(jid, chain, afterId, true);
                return;
            }
            if (messages.empty()) {
                self->chainDone(jid, chain, afterId, false);
                return;
            }
            auto s = self->chainSession(jid, chain);
            if (!s) {
                self->chainDone(jid, chain, afterId, true);
                return;
            }
            struct Settle {
                std::mutex mutex;
                std::vector<int64_t> accepted;
                size_t left = 0;
                bool stopped = false;  // the session ended before accepting everything
            };
            auto settle = std::make_shared<Settle>();
            settle->left = messages.size();
            int64_t lastId = messages.back().id;
            bool more = messages.size() == static_cast<size_t>(kDeliveryChunk);
            auto settleOne = [self, settle, jid, chain, lastId, more](int64_t id, bool accepted, bool stop) {
                std::vector<int64_t> done;
                {
                    std::lock_guard lock(settle->mutex);
                    if (accepted) {
                        settle->accepted.push_back(id);
                    }
                    settle->stopped = settle->stopped || stop;
                    if (--settle->left > 0) {
                        return;
                    }
                    done = std::move(settle->accepted);
                }
                bool stopped = settle->stopped;
                self->pool->submit([self, done, jid, chain, lastId, more, stopped](storage::Connection& c) {
                    try {
                        if (!done.empty()) {
                            offline::store::remove(c, jid.domain(), jid.local(), done);
                        }
                    } catch (const storage::Error& e) {
                        spdlog::error("offline: removing delivered messages of {} failed: {}", jid.bareStr(),
                                      e.what());
                        self->chainDone(jid, chain, lastId, true);
                        return;
                    }
                    if (more && !stopped) {
                        self->deliverChunk(jid, chain, lastId);
                    } else {
                        self->chainDone(jid, chain, lastId, stopped);
                    }
                });
            };
            for (auto& m : messages) {
                auto element = xmpp::parseStanza(m.stanza);
                if (!element) {
                    spdlog::error("offline: stored message {} for {} does not parse; kept", m.id,
                                  jid.bareStr());
                    settleOne(m.id, false, false);
                    continue;
                }
                element->setAttr("to", jid.str());
                int64_t id = m.id;
                s->deliverTracked(std::move(*element),
                                  [settleOne, id](bool accepted) { settleOne(id, accepted, !accepted); });
            }
        });
        if (!submitted) {
            chainDone(jid, chain, afterId, true);
        }
    }
};

OfflineModule::OfflineModule() : impl_(std::make_shared<Impl>()) {}
OfflineModule::~OfflineModule() = default;

std::vector<OptionSpec> OfflineModule::options() {
    return {
        {"max_messages", OptionSpec::Type::Integer, "1000", 0, 1000000,
         "messages stored per user; beyond it senders get <service-unavailable/>"},
        {"batch_size", OptionSpec::Type::Integer, "256", 1, 100000,
         "messages written per transaction (group commit)"},
        {"durable_ack", OptionSpec::Type::Boolean, "true", 0, 1,
         "hold the sender's XEP-0198 ack until the message is committed (turn off only to measure its cost)"},
    };
}

Registrations OfflineModule::start(ModuleContext& ctx) {
    impl_->router = &ctx.router;
    impl_->pool = &ctx.storage;
    impl_->maxMessages = ctx.options.integer("max_messages");
    impl_->batchSize = ctx.options.integer("batch_size");
    impl_->durableAck = ctx.options.boolean("durable_ack");
    Registrations regs;
    regs.features = {"msgoffline"};
    auto m = offline::store::migrations();
    regs.migrations.assign(m.begin(), m.end());
    auto impl = impl_;
    regs.onHook(ctx.hooks.deliveryFailed, Band::Store, "offline", [impl](DeliveryFailed& f) {
        return impl->onDeliveryFailed(f) ? Flow::Stop : Flow::Continue;
    });
    regs.onHook(ctx.hooks.deliveryPending, Band::Store, "offline", [impl](DeliveryPending& d) {
        return impl->onDeliveryPending(d) ? Flow::Stop : Flow::Continue;
    });
    // XEP-0160 §3 / RFC 6121 §8.5.2.1.1: messages wait for the first
    // available presence with a non-negative priority of a session.
    regs.onHook(ctx.hooks.presenceChanged, Band::Default, "offline",
                [impl](const PresenceChanged& p) { impl->onPresence(p); });
    regs.onHook(ctx.hooks.sessionResumed, Band::Default, "offline",
                [impl](const SessionResumed& r) { impl->onResumed(r); });
    regs.onHook(ctx.hooks.sessionClosed, Band::Default, "offline",
                [impl](const SessionEvent& e) { impl->onClosed(e); });
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "offline", [impl](const AccountEvent& a) {
        impl->pool->submit([a](storage::Connection& c) {
            try {
                offline::store::removeUser(c, a.host, a.username);
            } catch (const storage::Error& e) {
                spdlog::error("offline: removing messages of {}@{} failed: {}", a.username, a.host, e.what());
            }
        });
    });
    storage::Pool* pool = &ctx.storage;
    regs.commands.push_back({"get_offline_count",
                             {"USER", "HOST"},
                             "Number of messages stored for a user",
                             [pool](const std::vector<std::string>& a, AdminReply reply) {
                                 pool->submit([a, reply](storage::Connection& c) {
                                     try {
                                         reply(0,
                                               std::to_string(offline::store::count(c, a[1], a[0])) + "\n");
                                     } catch (const storage::Error& e) {
                                         reply(1, std::string("storage: ") + e.what() + "\n");
                                     }
                                 });
                             }});
    regs.commands.push_back({"delete_old_messages",
                             {"DAYS"},
                             "Deletes offline messages older than DAYS days",
                             [pool](const std::vector<std::string>& a, AdminReply reply) {
                                 int64_t days = 0;
                                 try {
                                     days = std::stoll(a[0]);
                                 } catch (const std::exception&) {
                                     days = -1;
                                 }
                                 if (days < 0) {
                                     reply(2, "DAYS must be a non-negative integer\n");
                                     return;
                                 }
                                 pool->submit([days, reply](storage::Connection& c) {
                                     try {
                                         auto n =
                                             offline::store::removeOlderThan(c, nowSeconds() - days * 86400);
                                         reply(0, "Deleted " + std::to_string(n) + " messages\n");
                                     } catch (const storage::Error& e) {
                                         reply(1, std::string("storage: ") + e.what() + "\n");
                                     }
                                 });
                             }});
    return regs;
}

void OfflineModule::stop() {}

}  // namespace xmppd::modules
