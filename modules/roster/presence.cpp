// Presence subscriptions (RFC 6121 §3) and presence broadcast (§4) for the
// roster module. Every state change is one transaction; the effects
// (pushes, routing) follow its commit.
#include <spdlog/spdlog.h>

#include "modules/roster/roster_impl.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/serializer.hpp"
#include "xmpp/stream_parser.hpp"

namespace xmppd::modules {

using roster::Item;
using roster::SubType;
using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

Element presenceOf(std::string_view type, const Jid& from, const Jid& to) {
    Element p("presence", std::string(xmpp::ns::kClient));
    p.setAttr("from", from.str()).setAttr("to", to.str());
    if (!type.empty()) {
        p.setAttr("type", type);
    }
    return p;
}

bool isEmpty(const Item& i) {
    return !i.inRoster && i.state == roster::SubState{};
}

// Set while a stored subscription request is routed again at login: it
// passes the inbound hooks (blocking may stop it) but is no new request for
// the state machine.
thread_local bool tlsReplayingRequest = false;

}  // namespace

void RosterModule::Impl::deliverToAvailable(const Jid& bare, const Element& stanza) {
    for (auto& r : router->resources(bare)) {
        if (r.available) {
            r.session->deliver(stanza);
        }
    }
}

void RosterModule::Impl::sendCurrentPresence(const Jid& user, const Jid& contact, bool unavailable) {
    for (auto& r : router->resources(user.bare())) {
        if (!r.available) {
            continue;
        }
        Jid from = user.bare().withResource(r.resource);
        Element p = unavailable || !r.presence ? presenceOf(unavailable ? "unavailable" : "", from, contact)
                                               : *r.presence;
        p.setAttr("from", from.str()).setAttr("to", contact.str());
        router->route(std::move(p));
    }
}

void RosterModule::Impl::onUserSent(UserSent& s, Flow& flow) {
    Element& e = *s.stanza;
    if (e.name() != "presence" || !e.hasAttr("to")) {
        return;
    }
    auto to = Jid::parse(e.attr("to"));
    if (!to) {
        return;  // the router answers <jid-malformed/>
    }
    std::string_view type = e.attr("type");
    SubType subType;
    if (roster::parseSubType(type, subType)) {
        flow = Flow::Stop;
        if (to->bare() == s.from.bare()) {
            return;  // subscribing to oneself has no meaning
        }
        outboundSubscription(s.from, to->bare(), subType, e);
        return;
    }
    if (type.empty() || type == "unavailable") {
        // Directed presence (§4.6): remember it, to undo it at logout.
        std::lock_guard lock(mutex);
        auto& targets = directed[s.from.str()];
        if (type.empty()) {
            targets.insert(to->str());
        } else {
            targets.erase(to->str());
        }
    }
}

void RosterModule::Impl::onInbound(StanzaInbound& in, Flow& flow) {
    Element& e = *in.stanza;
    if (e.name() != "presence") {
        return;
    }
    std::string_view type = e.attr("type");
    SubType subType;
    if (roster::parseSubType(type, subType)) {
        if (tlsReplayingRequest) {
            return;  // already stored: deliver it like any presence
        }
        flow = Flow::Stop;
        inboundSubscription(in.from.bare(), in.to.bare(), subType, e);
    } else if (type == "probe") {
        // Probes are answered at initial presence from the session table;
        // a client-sent probe gets nothing (§4.3.1 is for servers).
        flow = Flow::Stop;
    }
}

void RosterModule::Impl::outboundSubscription(const Jid& user, const Jid& contact, SubType type,
                                              Element stanza) {
    auto self = shared_from_this();
    Jid bare = user.bare();
    runSerial([self, bare, contact, type, stanza = std::move(stanza)](storage::Connection& c) mutable {
        Item item;
        roster::Outcome outcome;
        int64_t ver = 0;
        try {
            storage::Transaction tx(c);
            auto existing = roster::store::get(c, bare.domain(), bare.local(), contact.str());
            item = existing.value_or(Item{contact.str(), false, {}, {}, {}, {}});
            outcome = roster::outbound(item.state, type);
            bool show = outcome.changed || (type == SubType::Subscribe && !item.inRoster);
            if (show) {
                item.state = outcome.next;
                // §3.1.2: asking adds the contact; §3.1.5: so does approving,
                // and §3.4.1: so does pre-approving (subscription 'none',
                // approved='true').
                if (!item.inRoster && (type == SubType::Subscribe || type == SubType::Subscribed)) {
                    // The item limit holds here as for a roster set (§2.3.3).
                    if (roster::store::countInRoster(c, bare.domain(), bare.local()) >= self->maxItems) {
                        self->router->bounce(
                            stanza, StanzaError(StanzaCondition::NotAcceptable, "the roster is full"));
                        return;
                    }
                    item.inRoster = true;
                }
                if (!item.state.pendingIn) {
                    item.pendingStanza.clear();
                }
                if (isEmpty(item)) {
                    roster::store::remove(c, bare.domain(), bare.local(), contact.str());
                } else {
                    roster::store::put(c, bare.domain(), bare.local(), item);
                }
                ver = roster::store::bumpVersion(c, bare.domain(), bare.local());
            }
            tx.commit();
            if (show) {
                self->push(bare, item, ver, false);
            }
        } catch (const storage::Error& e) {
            spdlog::warn("roster: subscription from {} failed: {}", bare.str(), e.what());
            return;
        }
        if (outcome.forward) {
            // §3.1.2: subscription stanzas go out from the bare JID.
            stanza.setAttr("from", bare.str());
            stanza.setAttr("to", contact.str());
            self->router->route(std::move(stanza));
        }
        if (type == SubType::Subscribed && outcome.forward) {
            self->sendCurrentPresence(bare, contact, false);  // §3.1.5
        }
        if (type == SubType::Unsubscribed && outcome.changed && roster::hasFrom(item.state.sub) == false) {
            self->sendCurrentPresence(bare, contact, true);  // §3.2.2
        }
    });
}

void RosterModule::Impl::inboundSubscription(const Jid& contact, const Jid& user, SubType type,
                                             Element stanza) {
    auto self = shared_from_this();
    runSerial([self, contact, user, type, stanza = std::move(stanza)](storage::Connection& c) mutable {
        Item item;
        roster::Outcome outcome;
        int64_t ver = 0;
        stanza.setAttr("from", contact.str());
        stanza.setAttr("to", user.str());
        try {
            storage::Transaction tx(c);
            if (!roster::store::lockAccount(c, user.domain(), user.local())) {
                // RFC 6121 §8.5.1: subscription stanzas for an account that
                // does not exist are silently ignored; nothing is stored.
                return;
            }
            auto existing = roster::store::get(c, user.domain(), user.local(), contact.str());
            item = existing.value_or(Item{contact.str(), false, {}, {}, {}, {}});
            outcome = roster::inbound(item.state, type);
            if (outcome.changed) {
                item.state = outcome.next;
                // Keep the request itself so it can be shown at the next login.
                item.pendingStanza = item.state.pendingIn ? xmpp::toString(stanza, xmpp::ns::kClient) : "";
                if (isEmpty(item)) {
                    roster::store::remove(c, user.domain(), user.local(), contact.str());
                } else {
                    roster::store::put(c, user.domain(), user.local(), item);
                }
                if (item.inRoster) {
                    ver = roster::store::bumpVersion(c, user.domain(), user.local());
                }
            }
            tx.commit();
            if (outcome.changed && item.inRoster) {
                self->push(user, item, ver, false);
            }
        } catch (const storage::Error& e) {
            spdlog::warn("roster: subscription to {} failed: {}", user.str(), e.what());
            return;
        }
        if (outcome.forward) {
            self->deliverToAvailable(user, stanza);  // no one online: kept in the row
        }
        if (outcome.autoReplySubscribed) {
            // §3.1.3: already approved, answer on the user's behalf.
            self->router->route(presenceOf("subscribed", user, contact));
            self->sendCurrentPresence(user, contact, false);
        }
    });
}

void RosterModule::Impl::onPresenceChanged(const PresenceChanged& p) {
    auto self = shared_from_this();
    Jid full = p.jid;
    bool available = p.available;
    bool initial = p.initial;
    Element presence =
        p.presence ? *p.presence : presenceOf(available ? "" : "unavailable", full, full.bare());
    std::weak_ptr<Session> weak = p.session->shared_from_this();
    std::set<std::string> directedTargets;
    if (!available) {
        std::lock_guard lock(mutex);
        auto it = directed.find(full.str());
        if (it != directed.end()) {
            directedTargets = std::move(it->second);
            directed.erase(it);
        }
        Element last = presenceOf("unavailable", full, full.bare());
        lastUnavailable.insert_or_assign(full.bareStr(), last);
    }
    runSerial([self, full, available, initial, presence, weak,
               directedTargets](storage::Connection& c) mutable {
        // Record what is broadcast now, in lane order: a probe answer for
        // another user never shows a presence newer than the broadcasts
        // still queued behind it (RFC 6120 §10.1 in-order processing).
        self->router->setLastPresence(full, available ? std::make_shared<const Element>(presence) : nullptr);
        std::vector<Item> items;
        try {
            items = roster::store::load(c, full.domain(), full.local());
        } catch (const storage::Error& e) {
            spdlog::warn("roster: presence of {} not broadcast: {}", full.str(), e.what());
            return;
        }
        // §4.2.2, §4.4.2, §4.5.2: to every contact subscribed to us.
        for (const auto& item : items) {
            if (!roster::hasFrom(item.state.sub)) {
                continue;
            }
            directedTargets.erase(item.contact);
            Element copy = presence;
            copy.setAttr("from", full.str()).setAttr("to", item.contact);
            self->router->route(std::move(copy));
        }
        // §4.6.3: directed presence is undone with unavailable.
        for (const auto& target : directedTargets) {
            if (auto to = Jid::parse(target)) {
                self->router->route(presenceOf("unavailable", full, *to));
            }
        }
        if (!initial) {
            return;
        }
        // What follows goes through the router, not straight to the session:
        // the inbound hooks apply, so neither side's block list (XEP-0191
        // §3.4) is bypassed at login.
        for (const auto& item : items) {
            // §4.3.2: probes of our subscriptions, answered from the session
            // table: each available resource's last presence, or the last
            // unavailable we know of.
            if (roster::hasTo(item.state.sub)) {
                auto contact = Jid::parse(item.contact);
                bool any = false;
                for (auto& r : self->router->resources(*contact)) {
                    if (r.available && r.presence) {
                        Element copy = *r.presence;
                        copy.setAttr("from", contact->withResource(r.resource).str())
                            .setAttr("to", full.str());
                        self->router->route(std::move(copy));
                        any = true;
                    }
                }
                if (!any) {
                    std::optional<Element> last;
                    {
                        std::lock_guard lock(self->mutex);
                        auto it = self->lastUnavailable.find(item.contact);
                        if (it != self->lastUnavailable.end()) {
                            last = it->second;
                        }
                    }
                    if (last) {
                        last->setAttr("to", full.str());
                        self->router->route(std::move(*last));
                    }
                }
            }
            // §3.1.3: requests that arrived while we were away.
            if (item.state.pendingIn && !item.pendingStanza.empty()) {
                if (auto request = xmpp::parseStanza(item.pendingStanza)) {
                    request->setAttr("to", full.str());
                    tlsReplayingRequest = true;
                    self->router->route(std::move(*request));
                    tlsReplayingRequest = false;
                }
            }
        }
    });
}

// A session that was available handed its directed targets to the
// unavailable broadcast (onPresenceChanged, which runs first). One that sent
// directed presence without ever sending initial presence (§4.6.2) still
// owes them its unavailable (§4.6.3) when it ends.
void RosterModule::Impl::onSessionClosed(const SessionEvent& e) {
    std::set<std::string> targets;
    {
        std::lock_guard lock(mutex);
        interested.erase(e.jid.str());
        auto it = directed.find(e.jid.str());
        if (it != directed.end()) {
            targets = std::move(it->second);
            directed.erase(it);
        }
    }
    if (targets.empty()) {
        return;
    }
    // Through the lane, behind any presence job of this session still queued.
    auto self = shared_from_this();
    Jid full = e.jid;
    runSerial([self, full, targets](storage::Connection&) {
        for (const auto& target : targets) {
            if (auto to = Jid::parse(target)) {
                self->router->route(presenceOf("unavailable", full, *to));
            }
        }
    });
}

void RosterModule::Impl::onBlocklistChanged(const BlocklistChanged& b) {
    auto self = shared_from_this();
    Jid user = b.user.bare();
    std::vector<Jid> jids = b.jids;
    bool blocked = b.blocked;
    runSerial([self, user, jids, blocked](storage::Connection& c) {
        std::vector<Item> items;
        try {
            items = roster::store::load(c, user.domain(), user.local());
        } catch (const storage::Error& e) {
            spdlog::warn("roster: presence for the block list change of {} not sent: {}", user.str(),
                         e.what());
            return;
        }
        for (const auto& jid : jids) {
            for (const auto& item : items) {
                auto contact = Jid::parse(item.contact);
                if (!contact || !roster::hasFrom(item.state.sub)) {
                    continue;
                }
                // XEP-0191 §3.3/§3.4: only a contact allowed to see our
                // presence (subscription from/both) is told. An item blocks
                // a JID, its bare JID's resources, or a whole domain.
                bool covered = jid.local().empty()
                                   ? jid.resource().empty() && contact->domain() == jid.domain()
                                   : contact->bare() == jid.bare();
                if (!covered) {
                    continue;
                }
                Jid target = jid.local().empty() || jid.isBare() ? *contact : jid;
                if (blocked) {
                    self->sendUnavailableToBlocked(user, target);
                } else {
                    self->sendCurrentPresence(user, target, false);
                }
            }
        }
    });
}

void RosterModule::Impl::sendUnavailableToBlocked(const Jid& user, const Jid& target) {
    for (auto& r : router->resources(user)) {
        if (!r.available) {
            continue;
        }
        Element p = presenceOf("unavailable", user.withResource(r.resource), target);
        if (!router->isLocalHost(target.domain())) {
            router->route(std::move(p));
            continue;
        }
        // The one presence a blocked contact still gets: routing would stop
        // it at the block it announces (the sender's own list).
        for (auto& t : router->resources(target.bare())) {
            if (t.available && (target.isBare() || t.resource == target.resource())) {
                t.session->deliver(p);
            }
        }
    }
}

}  // namespace xmppd::modules
