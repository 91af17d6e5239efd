#include "modules/blocking/blocking_module.hpp"

#include <spdlog/spdlog.h>

#include <atomic>

#include "modules/blocking/blocklist_cache.hpp"
#include "modules/blocking/store.hpp"
#include "server/router.hpp"
#include "server/session.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"

namespace xmppd::modules {

using blocking::Items;
using blocking::Snapshot;
using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;
using xmpp::StanzaErrorType;

namespace {

constexpr std::string_view kBlocking = "urn:xmpp:blocking";
constexpr std::string_view kBlockingErrors = "urn:xmpp:blocking:errors";

// While a stanza that waited for a list is routed again, the list it waited
// for answers lookups on this thread even if the cache has let it go since.
struct Pinned {
    const std::string* bare;
    Snapshot items;
};
thread_local const Pinned* tlsPinned = nullptr;

class PinScope {
  public:
    PinScope(const std::string& bare, Snapshot items) : pin_{&bare, std::move(items)}, previous_(tlsPinned) {
        tlsPinned = &pin_;
    }
    ~PinScope() { tlsPinned = previous_; }
    PinScope(const PinScope&) = delete;
    PinScope& operator=(const PinScope&) = delete;

  private:
    Pinned pin_;
    const Pinned* previous_;
};

StanzaError unavailableForNow() {
    return StanzaError(StanzaCondition::InternalServerError, StanzaErrorType::Wait,
                       "the recipient's block list could not be read; try again later");
}

}  // namespace

struct BlockingModule::Impl : std::enable_shared_from_this<BlockingModule::Impl> {
    Router* router = nullptr;
    Hooks* hooks = nullptr;
    storage::Pool* pool = nullptr;
    int64_t maxItems = 1000;
    std::unique_ptr<blocking::BlocklistCache> cache;
    std::atomic<uint64_t> pushIds{1};

    Snapshot lookup(const std::string& bare) const {
        if (tlsPinned && *tlsPinned->bare == bare) {
            return tlsPinned->items;
        }
        return cache->find(bare);
    }

    // The server itself is never blocked: its answers and pushes must reach
    // the user whatever the list says about its domain.
    bool isServer(const Jid& jid) const { return jid.local().empty() && router->isLocalHost(jid.domain()); }
    bool isLocalUser(const Jid& jid) const {
        return !jid.local().empty() && router->isLocalHost(jid.domain());
    }

    void startLoad(const std::string& bare, uint64_t generation) {
        auto self = shared_from_this();
        bool queued = pool->submit([self, bare, generation](storage::Connection& c) {
            auto jid = Jid::parse(bare);
            std::vector<std::string> items;
            try {
                items = blocking::store::list(c, jid->domain(), jid->local());
            } catch (const storage::Error& e) {
                spdlog::warn("blocking: loading the block list of {} failed: {}", bare, e.what());
                self->cache->loadFailed(bare, generation);
                return;
            }
            self->cache->loaded(bare, generation, std::make_shared<const Items>(items.begin(), items.end()));
        });
        if (!queued) {
            spdlog::warn("blocking: storage busy, block list of {} not loaded", bare);
            cache->loadFailed(bare, generation);
        }
    }

    // XEP-0191 §3.4: the user appears to be offline to a blocked entity.
    void refuseInbound(const Element& stanza) {
        if (stanza.name() != "presence") {
            router->bounce(stanza,
                           StanzaError(StanzaCondition::ServiceUnavailable));  // never to errors, results
        }
    }

    void failClosed(const Element& stanza) {
        if (stanza.name() != "presence") {
            router->bounce(stanza, unavailableForNow());
        }
    }

    // Decides an inbound stanza with the recipient's list; true if it stops.
    bool blockedInbound(const Element& stanza, const Jid& from, const Items& items) {
        if (!blocking::matches(items, from)) {
            return false;
        }
        refuseInbound(stanza);
        return true;
    }

    Flow onInbound(StanzaInbound& in) {
        if (in.from.bare() == in.to.bare() || isServer(in.from)) {
            return Flow::Continue;
        }
        const Element& stanza = *in.stanza;
        // The sender's side, for presence the roster sends on a user's behalf
        // (broadcasts, probe answers): that never passed presence_outbound.
        if (stanza.name() == "presence" && stanza.attr("type") != "error" && isLocalUser(in.from)) {
            if (auto own = lookup(in.from.bareStr()); own && blocking::matches(*own, in.to)) {
                return Flow::Stop;
            }
        }
        std::string bare = in.to.bareStr();
        if (auto items = lookup(bare)) {
            return blockedInbound(stanza, in.from, *items) ? Flow::Stop : Flow::Continue;
        }
        // A message to an offline user whose list is not cached ends in
        // delivery_failed, which waits for the list with the sender's
        // XEP-0198 token; everything else waits here.
        if (stanza.name() == "message" && !cache->tracked(bare)) {
            return Flow::Continue;
        }
        auto held = std::make_shared<Element>(std::move(*in.stanza));
        auto self = shared_from_this();
        auto wait = cache->whenLoaded(
            bare, [self, held, bare](Snapshot items) { self->resumeInbound(std::move(*held), bare, items); });
        if (wait.ready || wait.refused) {
            *in.stanza = std::move(*held);
            if (wait.refused) {
                failClosed(*in.stanza);
                return Flow::Stop;
            }
            return blockedInbound(*in.stanza, in.from, *wait.ready) ? Flow::Stop : Flow::Continue;
        }
        if (wait.load) {
            startLoad(bare, *wait.load);
        }
        return Flow::Stop;
    }

    // Routes a stanza that waited for its recipient's list once more (the
    // inbound hooks run again; ours now finds the list).
    void resumeInbound(Element stanza, const std::string& bare, const Snapshot& items) {
        if (!items) {
            failClosed(stanza);
            return;
        }
        auto from = Jid::parse(stanza.attr("from"));
        if (from && blockedInbound(stanza, *from, *items)) {
            return;
        }
        PinScope pin(bare, items);
        router->route(std::move(stanza));
    }

    Flow onDeliveryFailed(DeliveryFailed& f) {
        // Stanzas that were already in a session's queue passed the inbound
        // check; only "no resource" is new traffic for an offline user.
        if (f.reason != FailureReason::NoResource || f.stanza->name() != "message") {
            return Flow::Continue;
        }
        auto from = Jid::parse(f.stanza->attr("from"));
        if (!from || from->bare() == f.to.bare() || isServer(*from)) {
            return Flow::Continue;
        }
        std::string bare = f.to.bareStr();
        if (auto items = lookup(bare)) {
            return blockedInbound(*f.stanza, *from, *items) ? Flow::Stop : Flow::Continue;
        }
        struct Held {
            Element stanza;
            Jid to;
            FailureReason reason;
            HandledToken handled;  // the sender's ack waits for the outcome
        };
        auto held = std::make_shared<Held>(Held{std::move(*f.stanza), f.to, f.reason, std::move(f.handled)});
        auto self = shared_from_this();
        auto wait = cache->whenLoaded(bare, [self, held, bare, from = *from](Snapshot items) {
            if (!items) {
                self->failClosed(held->stanza);
            } else if (!self->blockedInbound(held->stanza, from, *items)) {
                PinScope pin(bare, items);
                self->router->deliveryFailed(held->stanza, held->to, held->reason, std::move(held->handled));
            }
        });
        if (wait.ready || wait.refused) {
            *f.stanza = std::move(held->stanza);
            f.handled = std::move(held->handled);
            if (wait.refused) {
                failClosed(*f.stanza);
                return Flow::Stop;
            }
            return blockedInbound(*f.stanza, *from, *wait.ready) ? Flow::Stop : Flow::Continue;
        }
        if (wait.load) {
            startLoad(bare, *wait.load);
        }
        return Flow::Stop;
    }

    // XEP-0191 §3.5: the user's own stanzas to a blocked JID.
    Flow onOutbound(UserSent& s) {
        const Element& stanza = *s.stanza;
        if (!stanza.hasAttr("to")) {
            return Flow::Continue;
        }
        auto to = Jid::parse(stanza.attr("to"));
        if (!to || to->bare() == s.from.bare() || isServer(*to)) {
            return Flow::Continue;
        }
        // A session's list is loaded right after binding; in the short time
        // before, the user's own stanzas go out unchecked.
        auto items = cache->find(s.from.bareStr());
        if (!items || !blocking::matches(*items, *to)) {
            return Flow::Continue;
        }
        std::string_view type = stanza.attr("type");
        if (type == "error" || (stanza.name() == "iq" && type == "result")) {
            return Flow::Stop;  // never answer an error or a result
        }
        // XEP-0191 §3.5, Example 14: <not-acceptable/> of type cancel.
        Element reply = xmpp::makeErrorReply(
            stanza, StanzaError(StanzaCondition::NotAcceptable, StanzaErrorType::Cancel, ""));
        if (Element* error = reply.findChild("error", stanza.ns())) {
            error->addChild("blocked", std::string(kBlockingErrors));
        }
        s.session->deliver(std::move(reply));
        return Flow::Stop;
    }

    void answerList(const IqResponder& r, const Snapshot& items) {
        if (!items) {
            r.error(unavailableForNow());
            return;
        }
        Element list("blocklist", std::string(kBlocking));
        for (const auto& jid : *items) {
            list.addChild("item", std::string(kBlocking)).setAttr("jid", jid);
        }
        r.result(&list);
    }

    void handleIq(const IqRequest& req, const IqResponder& r) {
        // The list is the user's own business (XEP-0191 §3: no 'to').
        if (req.to.bare() != req.from.bare()) {
            r.error(StanzaError(StanzaCondition::Forbidden));
            return;
        }
        std::string bare = req.from.bareStr();
        const std::string& name = req.payload.name();
        if (req.iq.attr("type") == "get") {
            if (name != "blocklist") {
                r.error(StanzaError(StanzaCondition::BadRequest));
                return;
            }
            cache->addInterested(bare, req.from.resource());
            auto wait = cache->whenLoaded(
                bare, [self = shared_from_this(), r](Snapshot items) { self->answerList(r, items); });
            if (wait.ready) {
                answerList(r, wait.ready);
            } else if (wait.refused) {
                r.error(StanzaError(StanzaCondition::ResourceConstraint, "too many requests waiting"));
            } else if (wait.load) {
                startLoad(bare, *wait.load);
            }
            return;
        }
        if (name != "block" && name != "unblock") {
            r.error(StanzaError(StanzaCondition::BadRequest));
            return;
        }
        std::vector<std::string> jids;
        Items seen;
        for (const auto& child : req.payload.children()) {
            if (child.isText()) {
                continue;
            }
            if (!child.is("item", kBlocking) || !child.hasAttr("jid")) {
                r.error(StanzaError(StanzaCondition::BadRequest, "expected <item jid='...'/>"));
                return;
            }
            auto jid = Jid::parse(child.attr("jid"));
            if (!jid) {
                r.error(StanzaError(StanzaCondition::JidMalformed,
                                    "not a JID: " + std::string(child.attr("jid"))));
                return;
            }
            if (seen.insert(jid->str()).second) {
                jids.push_back(jid->str());
            }
        }
        bool block = name == "block";
        if (block && jids.empty()) {
            // XEP-0191 §3.3: a block names at least one JID.
            r.error(StanzaError(StanzaCondition::BadRequest, "<block/> needs at least one item"));
            return;
        }
        if (static_cast<int64_t>(jids.size()) > maxItems) {
            r.error(StanzaError(StanzaCondition::PolicyViolation,
                                "a block list holds at most " + std::to_string(maxItems) + " JIDs"));
            return;
        }
        auto self = shared_from_this();
        Jid user = req.from;
        cache->startChange(bare, [self, user, block, jids, r] { self->change(user, block, jids, r); });
    }

    // One change: written in one transaction, re-read, cached, answered and
    // pushed; the next change of the same user starts after it.
    void change(const Jid& user, bool block, const std::vector<std::string>& jids, const IqResponder& r) {
        auto self = shared_from_this();
        std::string bare = user.bareStr();
        bool queued = pool->submit([self, user, bare, block, jids, r](storage::Connection& c) {
            blocking::ChangeResult result;
            std::vector<std::string> now;
            std::vector<std::string> changed;  // what this change really blocks or unblocks
            try {
                auto before = blocking::store::list(c, user.domain(), user.local());
                Items held(before.begin(), before.end());
                if (!block && jids.empty()) {
                    changed = before;  // "unblock all"
                }
                for (const auto& jid : jids) {
                    if (held.contains(jid) != block) {
                        changed.push_back(jid);
                    }
                }
                result = block ? blocking::store::block(c, user.domain(), user.local(), jids, self->maxItems)
                               : blocking::store::unblock(c, user.domain(), user.local(), jids);
                if (result == blocking::ChangeResult::Done) {
                    now = blocking::store::list(c, user.domain(), user.local());
                }
            } catch (const storage::Error& e) {
                spdlog::warn("blocking: changing the block list of {} failed: {}", bare, e.what());
                r.error(StanzaError(StanzaCondition::InternalServerError, StanzaErrorType::Wait,
                                    "the block list could not be changed"));
                self->cache->finishChange(bare);
                return;
            }
            if (result == blocking::ChangeResult::NoSuchUser) {
                r.error(StanzaError(StanzaCondition::ItemNotFound));
            } else if (result == blocking::ChangeResult::TooMany) {
                r.error(
                    StanzaError(StanzaCondition::PolicyViolation,
                                "a block list holds at most " + std::to_string(self->maxItems) + " JIDs"));
            } else {
                self->cache->replace(bare, std::make_shared<const Items>(now.begin(), now.end()));
                r.result();
                self->push(user.bare(), block, jids);
                BlocklistChanged event{user.bare(), {}, block};
                for (const auto& jid : changed) {
                    if (auto parsed = Jid::parse(jid)) {
                        event.jids.push_back(*parsed);
                    }
                }
                self->hooks->blocklistChanged.run(event);
            }
            self->cache->finishChange(bare);
        });
        if (!queued) {
            r.error(StanzaError(StanzaCondition::ResourceConstraint, "storage is busy"));
            cache->finishChange(bare);
        }
    }

    // XEP-0191 §3.3/§3.4: the change goes to every resource that asked for the list.
    void push(const Jid& bare, bool block, const std::vector<std::string>& jids) {
        for (const auto& resource : cache->interested(bare.bareStr())) {
            Element iq("iq", std::string(xmpp::ns::kClient));
            iq.setAttr("from", bare.str());
            iq.setAttr("to", bare.withResource(resource).str());
            iq.setAttr("type", "set");
            iq.setAttr("id", "block-push-" + std::to_string(pushIds++));
            Element& payload = iq.addChild(block ? "block" : "unblock", std::string(kBlocking));
            for (const auto& jid : jids) {
                payload.addChild("item", std::string(kBlocking)).setAttr("jid", jid);
            }
            router->route(std::move(iq));
        }
    }
};

BlockingModule::BlockingModule() : impl_(std::make_shared<Impl>()) {}
BlockingModule::~BlockingModule() = default;

std::vector<OptionSpec> BlockingModule::options() {
    return {
        {"max_items", OptionSpec::Type::Integer, "1000", 1, 1000000,
         "JIDs in one user's block list; beyond it <policy-violation/>"},
        {"cache_offline_users", OptionSpec::Type::Integer, "10000", 0, 100000000,
         "block lists of offline users kept in memory (0: dropped at the last logout)"},
    };
}

Registrations BlockingModule::start(ModuleContext& ctx) {
    impl_->router = &ctx.router;
    impl_->hooks = &ctx.hooks;
    impl_->pool = &ctx.storage;
    impl_->maxItems = ctx.options.integer("max_items");
    impl_->cache = std::make_unique<blocking::BlocklistCache>(
        static_cast<size_t>(ctx.options.integer("cache_offline_users")));
    auto impl = impl_;
    Registrations regs;
    regs.features = {std::string(kBlocking)};
    auto m = blocking::store::migrations();
    regs.migrations.assign(m.begin(), m.end());
    regs.iqHandlers.push_back(
        {IqScope::Account, std::string(kBlocking),
         [impl](const IqRequest& req, const IqResponder& r) { impl->handleIq(req, r); }});
    regs.onHook(ctx.hooks.stanzaInbound, Band::Policy, "blocking",
                [impl](StanzaInbound& in) { return impl->onInbound(in); });
    regs.onHook(ctx.hooks.deliveryFailed, Band::Policy, "blocking",
                [impl](DeliveryFailed& f) { return impl->onDeliveryFailed(f); });
    regs.onHook(ctx.hooks.userSent, Band::Policy, "blocking",
                [impl](UserSent& s) { return impl->onOutbound(s); });
    regs.onHook(ctx.hooks.presenceOutbound, Band::Policy, "blocking",
                [impl](UserSent& s) { return impl->onOutbound(s); });
    regs.onHook(ctx.hooks.sessionBound, Band::Default, "blocking", [impl](const SessionEvent& e) {
        std::string bare = e.jid.bareStr();
        if (auto generation = impl->cache->sessionBound(bare)) {
            impl->startLoad(bare, *generation);
        }
    });
    regs.onHook(ctx.hooks.sessionClosed, Band::Default, "blocking", [impl](const SessionEvent& e) {
        impl->cache->sessionClosed(e.jid.bareStr(), e.jid.resource());
    });
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "blocking", [impl](const AccountEvent& a) {
        impl->pool->submit([a](storage::Connection& c) {
            try {
                blocking::store::removeUser(c, a.host, a.username);
            } catch (const storage::Error& e) {
                spdlog::error("blocking: removing the block list of {}@{} failed: {}", a.username, a.host,
                              e.what());
            }
        });
        if (auto jid = Jid::fromParts(a.username, a.host)) {
            impl->cache->forget(jid->bareStr());
        }
    });
    return regs;
}

}  // namespace xmppd::modules
