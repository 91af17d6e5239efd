#include <spdlog/spdlog.h>

#include "modules/roster/roster_impl.hpp"
#include "xmpp/ns.hpp"

namespace xmppd::modules {

using roster::Item;
using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

bool hasControlCharacters(std::string_view s) {
    for (unsigned char c : s) {
        if (c < 0x20) {
            return true;
        }
    }
    return false;
}

}  // namespace

// Validates one <item/> of a roster set (RFC 6121 §2.3.2, §2.1.2).
std::optional<StanzaError> parseRosterItem(const Element& e, const Jid& owner, size_t maxName,
                                           size_t maxGroups, Item& out, bool& remove) {
    auto jid = Jid::parse(e.attr("jid"));
    if (!jid || !jid->isBare()) {
        return StanzaError(StanzaCondition::BadRequest, "the item needs a bare 'jid'");
    }
    if (jid->bare() == owner.bare()) {
        return StanzaError(StanzaCondition::NotAllowed, "you cannot put yourself in your roster");
    }
    std::string_view sub = e.attr("subscription");
    remove = sub == "remove";
    if (!sub.empty() && !remove) {
        // §2.1.2.5: only 'remove' may come from a client.
        return StanzaError(StanzaCondition::BadRequest, "subscription may only be 'remove'");
    }
    out.contact = jid->bareStr();
    out.name = std::string(e.attr("name"));
    if (out.name.size() > maxName || hasControlCharacters(out.name)) {
        return StanzaError(StanzaCondition::NotAcceptable,
                           "the name is too long or contains control characters");
    }
    std::set<std::string> seen;
    for (const auto& g : e.children()) {
        if (!g.is("group", kRoster)) {
            continue;
        }
        std::string name = g.text();
        if (name.empty() || name.size() > maxName || hasControlCharacters(name)) {
            return StanzaError(StanzaCondition::NotAcceptable,
                               "a group name is empty, too long or has control characters");
        }
        if (seen.insert(name).second) {  // §2.1.2.4: duplicates are folded
            out.groups.push_back(name);
        }
    }
    if (out.groups.size() > maxGroups) {
        return StanzaError(StanzaCondition::NotAcceptable, "too many groups");
    }
    return std::nullopt;
}

Element RosterModule::Impl::itemElement(const Item& item, bool removed) {
    Element e("item", std::string(kRoster));
    e.setAttr("jid", item.contact);
    if (!item.name.empty()) {
        e.setAttr("name", item.name);
    }
    e.setAttr("subscription", removed ? "remove" : roster::toString(item.state.sub));
    if (!removed && item.state.pendingOut) {
        e.setAttr("ask", "subscribe");
    }
    if (!removed && item.state.preApproved) {
        e.setAttr("approved", "true");
    }
    if (!removed) {
        for (const auto& g : item.groups) {
            e.addChild("group", std::string(kRoster)).addText(g);
        }
    }
    return e;
}

bool RosterModule::Impl::runSerial(Job job) {
    std::lock_guard lock(laneMutex);
    lane.push_back(std::move(job));
    if (laneRunning) {
        return true;
    }
    laneRunning = true;
    auto self = shared_from_this();
    if (!pool->submit([self](storage::Connection& c) { self->drainLane(c); })) {
        laneRunning = false;
        lane.pop_back();
        spdlog::error("roster: storage queue full, a roster change was refused");
        return false;
    }
    return true;
}

void RosterModule::Impl::drainLane(storage::Connection& c) {
    for (;;) {
        Job job;
        {
            std::lock_guard lock(laneMutex);
            if (lane.empty()) {
                laneRunning = false;
                return;
            }
            job = std::move(lane.front());
            lane.pop_front();
        }
        try {
            job(c);
        } catch (const std::exception& e) {
            spdlog::error("roster: job failed: {}", e.what());
        }
    }
}

void RosterModule::Impl::push(const Jid& user, const Item& item, int64_t version, bool removed) {
    if (!item.inRoster && !removed) {
        return;
    }
    static std::atomic<uint64_t> counter{0};
    for (auto& r : router->resources(user.bare())) {
        std::string full = user.bare().withResource(r.resource).str();
        {
            std::lock_guard lock(mutex);
            if (!interested.count(full)) {
                continue;
            }
        }
        // §2.1.6: a push comes from the user's bare JID.
        Element iq("iq", std::string(xmpp::ns::kClient));
        iq.setAttr("type", "set").setAttr("id", "push" + std::to_string(++counter));
        iq.setAttr("from", user.bareStr()).setAttr("to", full);
        iq.addChild("query", std::string(kRoster))
            .setAttr("ver", std::to_string(version))
            .addChild(itemElement(item, removed));
        r.session->deliver(std::move(iq));
    }
}

void RosterModule::Impl::handleRosterIq(const IqRequest& req, const IqResponder& r) {
    if (req.from.bare() != req.to.bare()) {
        r.error(StanzaError(StanzaCondition::Forbidden, "only your own roster"));
        return;
    }
    Jid user = req.from;
    auto self = shared_from_this();
    if (req.iq.attr("type") == "get") {
        {
            std::lock_guard lock(mutex);
            interested.insert(user.str());
        }
        std::string clientVer(req.payload.attr("ver"));
        bool versioned = req.payload.hasAttr("ver");
        IqResponder responder = r;
        bool ok = runSerial([self, user, clientVer, versioned, responder](storage::Connection& c) {
            try {
                int64_t ver = roster::store::version(c, user.domain(), user.local());
                // XEP-0237 §3: unchanged since the client's copy → empty result.
                if (versioned && clientVer == std::to_string(ver)) {
                    responder.result();
                    return;
                }
                Element q("query", std::string(kRoster));
                q.setAttr("ver", std::to_string(ver));
                for (const auto& item : roster::store::load(c, user.domain(), user.local())) {
                    if (item.inRoster) {
                        q.addChild(itemElement(item, false));
                    }
                }
                responder.result(&q);
            } catch (const storage::Error& e) {
                spdlog::warn("roster: loading {} failed: {}", user.bareStr(), e.what());
                responder.error(StanzaError(StanzaCondition::InternalServerError, "storage unavailable"));
            }
        });
        if (!ok) {
            r.error(StanzaError(StanzaCondition::ResourceConstraint, "server busy"));
        }
        return;
    }
    // set: exactly one item (§2.3.3).
    const Element* only = nullptr;
    size_t count = 0;
    for (const auto& c : req.payload.children()) {
        if (c.is("item", kRoster)) {
            only = &c;
            ++count;
        }
    }
    if (count != 1) {
        r.error(StanzaError(StanzaCondition::BadRequest, "a roster set carries exactly one item"));
        return;
    }
    Item item;
    bool remove = false;
    if (auto err = parseRosterItem(*only, user, maxNameBytes, maxGroups, item, remove)) {
        r.error(*err);
        return;
    }
    IqResponder responder = r;
    bool ok = runSerial([self, user, item, remove, responder](storage::Connection& c) mutable {
        try {
            storage::Transaction tx(c);
            auto existing = roster::store::get(c, user.domain(), user.local(), item.contact);
            if (remove) {
                if (!existing || !existing->inRoster) {
                    responder.error(StanzaError(StanzaCondition::ItemNotFound));
                    return;
                }
                roster::store::remove(c, user.domain(), user.local(), item.contact);
                int64_t ver = roster::store::bumpVersion(c, user.domain(), user.local());
                tx.commit();
                responder.result();
                self->push(user, *existing, ver, true);
                // §2.5.2: removing cancels the subscriptions both ways.
                auto contact = *Jid::parse(existing->contact);
                for (auto [has, type] :
                     {std::pair{roster::hasTo(existing->state.sub) || existing->state.pendingOut,
                                "unsubscribe"},
                      std::pair{roster::hasFrom(existing->state.sub) || existing->state.pendingIn,
                                "unsubscribed"}}) {
                    if (has) {
                        if (std::string_view(type) == "unsubscribed" &&
                            roster::hasFrom(existing->state.sub)) {
                            self->sendCurrentPresence(user, contact, true);  // §3.2.2
                        }
                        Element p("presence", std::string(xmpp::ns::kClient));
                        p.setAttr("from", user.bareStr()).setAttr("to", contact.str()).setAttr("type", type);
                        self->router->route(std::move(p));
                    }
                }
                return;
            }
            if (!existing || !existing->inRoster) {
                if (roster::store::countInRoster(c, user.domain(), user.local()) >= self->maxItems) {
                    responder.error(StanzaError(StanzaCondition::NotAcceptable, "the roster is full"));
                    return;
                }
            }
            Item updated = existing.value_or(Item{});
            updated.contact = item.contact;
            updated.inRoster = true;
            updated.name = item.name;
            updated.groups = item.groups;
            roster::store::put(c, user.domain(), user.local(), updated);
            int64_t ver = roster::store::bumpVersion(c, user.domain(), user.local());
            tx.commit();
            responder.result();
            self->push(user, updated, ver, false);
        } catch (const storage::Error& e) {
            spdlog::warn("roster: update of {} failed: {}", user.bareStr(), e.what());
            responder.error(StanzaError(StanzaCondition::InternalServerError, "storage unavailable"));
        }
    });
    if (!ok) {
        r.error(StanzaError(StanzaCondition::ResourceConstraint, "server busy"));
    }
}

void RosterModule::Impl::answerSubscriptionQuery(const SubscriptionQuery& q) {
    auto answer = q.answer;
    Jid user = q.user.bare();
    std::string contact = q.contact.bareStr();
    bool inRoster = q.question == SubscriptionQuery::Question::InRoster;
    // In the lane: the answer reflects every subscription change queued before.
    bool queued = runSerial([user, contact, answer, inRoster](storage::Connection& c) {
        std::optional<Item> item;
        try {
            item = roster::store::get(c, user.domain(), user.local(), contact);
        } catch (const storage::Error& e) {
            spdlog::warn("roster: subscription of {} to {} not read: {}", contact, user.bareStr(), e.what());
            answer(std::nullopt);
            return;
        }
        answer(item && (inRoster ? item->inRoster : roster::hasFrom(item->state.sub)));
    });
    if (!queued) {
        answer(std::nullopt);
    }
}

RosterModule::RosterModule() : impl_(std::make_shared<Impl>()) {}
RosterModule::~RosterModule() = default;

std::vector<OptionSpec> RosterModule::options() {
    return {
        {"max_items", OptionSpec::Type::Integer, "1000", 1, 1000000, "contacts per roster"},
        {"max_name_bytes", OptionSpec::Type::Integer, "1023", 1, 65535, "bytes in an item's or group's name"},
        {"max_groups", OptionSpec::Type::Integer, "64", 0, 10000, "groups per item"},
    };
}

Registrations RosterModule::start(ModuleContext& ctx) {
    auto impl = impl_;
    impl->router = &ctx.router;
    impl->pool = &ctx.storage;
    impl->maxItems = ctx.options.integer("max_items");
    impl->maxNameBytes = static_cast<size_t>(ctx.options.integer("max_name_bytes"));
    impl->maxGroups = static_cast<size_t>(ctx.options.integer("max_groups"));
    Registrations regs;
    auto m = roster::store::migrations();
    regs.migrations.assign(m.begin(), m.end());
    regs.features = {"urn:xmpp:features:rosterver"};
    // RFC 6121 §2.6.1 and §3.4: roster versioning and subscription
    // pre-approval are announced as stream features.
    regs.streamFeatures = {"<ver xmlns='urn:xmpp:features:rosterver'/>",
                           "<sub xmlns='urn:xmpp:features:pre-approval'/>"};
    regs.iqHandlers.push_back(
        {IqScope::Account, std::string(kRoster),
         [impl](const IqRequest& req, const IqResponder& r) { impl->handleRosterIq(req, r); }});
    regs.onHook(ctx.hooks.userSent, Band::Default, "roster", [impl](UserSent& s) {
        Flow flow = Flow::Continue;
        impl->onUserSent(s, flow);
        return flow;
    });
    regs.onHook(
        ctx.hooks.stanzaInbound, Band::Default, "roster",
        [impl](StanzaInbound& in) {
            Flow flow = Flow::Continue;
            impl->onInbound(in, flow);
            return flow;
        },
        -10);
    regs.onHook(ctx.hooks.presenceChanged, Band::Default, "roster",
                [impl](const PresenceChanged& p) { impl->onPresenceChanged(p); });
    regs.onHook(ctx.hooks.subscriptionQuery, Band::Default, "roster", [impl](SubscriptionQuery& q) {
        impl->answerSubscriptionQuery(q);
        return Flow::Stop;
    });
    regs.onHook(ctx.hooks.blocklistChanged, Band::Default, "roster",
                [impl](const BlocklistChanged& b) { impl->onBlocklistChanged(b); });
    regs.onHook(ctx.hooks.sessionClosed, Band::Default, "roster",
                [impl](const SessionEvent& e) { impl->onSessionClosed(e); });
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "roster", [impl](const AccountEvent& a) {
        impl->pool->submit([a](storage::Connection& c) {
            try {
                roster::store::removeUser(c, a.host, a.username);
            } catch (const storage::Error& e) {
                spdlog::error("roster: removing {}@{} failed: {}", a.username, a.host, e.what());
            }
        });
    });
    addRosterCommands(regs, impl);
    return regs;
}

}  // namespace xmppd::modules
