#include "server/router.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

#include "xmpp/ns.hpp"

namespace xmppd {

using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

// A message's sender waits (XEP-0198 'h') until every device it went to
// acknowledged it or a durable copy was made: each delivery holds the token.
void deliverAll(std::vector<std::shared_ptr<Session>>& targets, Element& stanza,
                const HandledToken& handled) {
    for (size_t i = 0; i < targets.size(); ++i) {
        Element copy = i + 1 == targets.size() ? std::move(stanza) : stanza;
        if (handled) {
            targets[i]->deliverHeld(std::move(copy), handled);
        } else {
            targets[i]->deliver(std::move(copy));
        }
    }
}

}  // namespace

Router::Router(std::vector<std::string> hosts, Hooks& hooks) : hosts_(std::move(hosts)), hooks_(hooks) {
    // The core's own default for undeliverable messages, in the Fallback band
    // so that offline storage (Store band) runs before it.
    hooks_.deliveryFailed.add(Band::Fallback, 0, "core", [this](DeliveryFailed& f) {
        std::string_view type = f.stanza->attr("type");
        if (f.stanza->name() == "message" && (type.empty() || type == "normal" || type == "chat")) {
            bounce(*f.stanza, StanzaError(StanzaCondition::ServiceUnavailable));
        }
        return Flow::Stop;
    });
}

bool Router::isLocalHost(std::string_view domain) const {
    return std::find(hosts_.begin(), hosts_.end(), domain) != hosts_.end();
}

void Router::setComponentDomains(const std::vector<std::string>& domains) {
    std::unique_lock lock(componentsMutex_);
    for (const auto& d : domains) {
        components_.emplace(d, nullptr);
    }
}

bool Router::isComponentDomain(std::string_view domain) const {
    std::shared_lock lock(componentsMutex_);
    return components_.find(domain) != components_.end();
}

bool Router::attachComponent(const std::string& domain, std::shared_ptr<Session> session) {
    std::unique_lock lock(componentsMutex_);
    auto it = components_.find(domain);
    if (it == components_.end() || it->second) {
        return false;
    }
    it->second = std::move(session);
    return true;
}

void Router::detachComponent(const std::string& domain, const Session* session) {
    std::unique_lock lock(componentsMutex_);
    auto it = components_.find(domain);
    if (it != components_.end() && it->second.get() == session) {
        it->second = nullptr;
    }
}

std::vector<std::pair<std::string, std::shared_ptr<Session>>> Router::components() const {
    std::shared_lock lock(componentsMutex_);
    return {components_.begin(), components_.end()};
}

bool Router::routeToComponent(Element& stanza, const Jid& to) {
    std::shared_ptr<Session> target;
    {
        std::shared_lock lock(componentsMutex_);
        auto it = components_.find(to.domain());
        if (it == components_.end()) {
            return false;
        }
        target = it->second;
    }
    if (target) {
        target->deliver(std::move(stanza));
    } else if (stanza.name() != "presence") {
        // The component is not connected: nothing is queued for it (XEP-0114
        // has no resumption); presence to an unavailable entity is dropped.
        bounce(stanza, StanzaError(StanzaCondition::ServiceUnavailable, "the component is not connected"));
    }
    return true;
}

Router::Shard& Router::shardFor(const std::string& bare) const {
    return shards_[std::hash<std::string>{}(bare) % kShards];
}

std::shared_ptr<Session> Router::bind(const Jid& full, std::shared_ptr<Session> session) {
    std::string bare = full.bareStr();
    Shard& shard = shardFor(bare);
    std::unique_lock lock(shard.mutex);
    Entry& e = shard.users[bare][full.resource()];
    std::shared_ptr<Session> old = std::move(e.session);
    e = Entry{std::move(session), 0, false, nullptr};
    return old;
}

void Router::unbind(const Jid& full, const Session* session) {
    std::string bare = full.bareStr();
    Shard& shard = shardFor(bare);
    std::unique_lock lock(shard.mutex);
    auto it = shard.users.find(bare);
    if (it == shard.users.end()) {
        return;
    }
    auto r = it->second.find(full.resource());
    // Only the session that holds the binding may remove it: a replaced
    // session closing late must not unbind its successor.
    if (r != it->second.end() && r->second.session.get() == session) {
        it->second.erase(r);
        if (it->second.empty()) {
            shard.users.erase(it);
        }
    }
}

template <typename Fn>
void Router::withEntry(const Jid& full, Fn&& fn) {
    std::string bare = full.bareStr();
    Shard& shard = shardFor(bare);
    std::unique_lock lock(shard.mutex);
    auto it = shard.users.find(bare);
    if (it == shard.users.end()) {
        return;
    }
    auto r = it->second.find(full.resource());
    if (r != it->second.end()) {
        fn(r->second);
    }
}

void Router::setPresence(const Jid& full, bool available, int priority) {
    withEntry(full, [&](Entry& e) {
        e.available = available;
        e.priority = priority;
    });
}

void Router::setLastPresence(const Jid& full, std::shared_ptr<const Element> presence) {
    withEntry(full, [&](Entry& e) { e.presence = std::move(presence); });
}

std::vector<ResourceView> Router::resources(const Jid& bareJid) const {
    std::string bare = bareJid.bareStr();
    Shard& shard = shardFor(bare);
    std::shared_lock lock(shard.mutex);
    std::vector<ResourceView> out;
    auto it = shard.users.find(bare);
    if (it != shard.users.end()) {
        for (const auto& [res, e] : it->second) {
            out.push_back(ResourceView{e.session, res, e.priority, e.available, e.presence});
        }
    }
    return out;
}

size_t Router::sessionCount() const {
    size_t n = 0;
    for (auto& s : shards_) {
        std::shared_lock lock(s.mutex);
        for (const auto& [_, res] : s.users) {
            n += res.size();
        }
    }
    return n;
}

size_t Router::userCount() const {
    size_t n = 0;
    for (auto& s : shards_) {
        std::shared_lock lock(s.mutex);
        n += s.users.size();
    }
    return n;
}

void Router::forEachSession(const std::function<void(const ResourceView&, const std::string&)>& fn) const {
    for (auto& s : shards_) {
        std::vector<std::pair<ResourceView, std::string>> copy;
        {
            std::shared_lock lock(s.mutex);
            for (const auto& [bare, res] : s.users) {
                for (const auto& [r, e] : res) {
                    copy.push_back({ResourceView{e.session, r, e.priority, e.available, e.presence}, bare});
                }
            }
        }
        for (const auto& [view, bare] : copy) {
            fn(view, bare);
        }
    }
}

void Router::addIqHandler(IqScope scope, const std::string& ns, const std::string& module,
                          IqHandler handler) {
    auto key = std::make_pair(scope, ns);
    auto it = iqHandlers_.find(key);
    if (it != iqHandlers_.end()) {
        throw std::runtime_error("modules " + it->second.module + " and " + module +
                                 " both handle iq namespace " + ns);
    }
    iqHandlers_.emplace(key, IqEntry{module, std::move(handler)});
}

void Router::removeIqHandler(IqScope scope, const std::string& ns) {
    iqHandlers_.erase(std::make_pair(scope, ns));
}

void Router::bounce(const Element& stanza, const StanzaError& error) {
    std::string_view type = stanza.attr("type");
    // RFC 6120 §8.3.1: never answer an error with an error, nor a result.
    if (type == "error" || (stanza.name() == "iq" && type == "result")) {
        return;
    }
    Element reply = xmpp::makeErrorReply(stanza, error);
    if (!reply.hasAttr("to")) {
        return;
    }
    if (!reply.hasAttr("from") || !Jid::parse(reply.attr("from"))) {
        // The original 'to' was missing or malformed: answer from the sender's server.
        auto sender = Jid::parse(reply.attr("to"));
        reply.setAttr("from", sender ? sender->domain() : hosts_.front());
    }
    route(std::move(reply));
}

void Router::route(Element stanza, HandledToken handled) {
    auto from = Jid::parse(stanza.attr("from"));
    if (!from) {
        spdlog::warn("router: dropping stanza with invalid from '{}'", stanza.attr("from"));
        return;
    }
    std::optional<Jid> to;
    if (!stanza.hasAttr("to")) {
        // RFC 6120 §10.3: no 'to' means the sender's own account.
        to = from->bare();
    } else {
        to = Jid::parse(stanza.attr("to"));
        if (!to) {
            bounce(stanza, StanzaError(StanzaCondition::JidMalformed, "the 'to' address is not a valid JID"));
            return;
        }
    }
    if (!isLocalHost(to->domain())) {
        if (routeToComponent(stanza, *to)) {
            return;
        }
        // No server-to-server yet (roadmap step 9).
        bounce(stanza, StanzaError(StanzaCondition::RemoteServerNotFound));
        return;
    }
    if (to->local().empty()) {
        routeToServer(stanza, *from, *to);
    } else {
        routeToUser(stanza, *from, *to, handled);
    }
}

bool Router::handleIq(IqScope scope, Element& iq, const Jid& from, const Jid& to) {
    std::string_view type = iq.attr("type");
    if (type != "get" && type != "set") {
        return true;  // results and errors to the server or an account end here
    }
    const Element* payload = iq.firstChildElement();
    if (!payload) {
        bounce(iq, StanzaError(StanzaCondition::BadRequest));
        return true;
    }
    auto it = iqHandlers_.find(std::make_pair(scope, payload->ns()));
    if (it == iqHandlers_.end()) {
        return false;
    }
    IqRequest request{iq, *payload, from, to};
    IqResponder responder(*this, request);
    try {
        it->second.handler(request, responder);
    } catch (const std::exception& e) {
        spdlog::error("module {}: iq handler for {} failed: {}", it->second.module, payload->ns(), e.what());
        responder.error(StanzaError(StanzaCondition::InternalServerError));
    }
    return true;
}

void Router::routeToServer(Element& stanza, const Jid& from, const Jid& to) {
    if (stanza.name() == "iq") {
        if (!to.resource().empty() || !handleIq(IqScope::Server, stanza, from, to)) {
            bounce(stanza, StanzaError(StanzaCondition::ServiceUnavailable));
        }
    } else if (stanza.name() == "message") {
        std::string_view type = stanza.attr("type");
        if (type.empty() || type == "normal" || type == "chat") {
            bounce(stanza, StanzaError(StanzaCondition::ServiceUnavailable));
        }
    }
    // Presence to the server itself has no effect here.
}

void Router::routeToUser(Element& stanza, const Jid& from, const Jid& to, HandledToken& handled) {
    StanzaInbound in{&stanza, from, to, handled};
    if (hooks_.stanzaInbound.run(in) == Flow::Stop) {
        return;
    }
    if (to.isBare()) {
        routeToBare(stanza, from, to, handled);
        return;
    }
    std::shared_ptr<Session> target;
    {
        std::string bare = to.bareStr();
        Shard& shard = shardFor(bare);
        std::shared_lock lock(shard.mutex);
        auto it = shard.users.find(bare);
        if (it != shard.users.end()) {
            auto r = it->second.find(to.resource());
            if (r != it->second.end()) {
                target = r->second.session;
            }
        }
    }
    if (target) {
        if (handled && stanza.name() == "message") {
            target->deliverHeld(std::move(stanza), handled);
        } else {
            target->deliver(std::move(stanza));
        }
        return;
    }
    // RFC 6121 §8.5.3.2: the full JID has no session.
    std::string_view type = stanza.attr("type");
    if (stanza.name() == "message") {
        if (type.empty() || type == "normal" || type == "chat" || type == "headline") {
            routeToBare(stanza, from, to.bare(), handled);
        } else if (type == "groupchat") {
            bounce(stanza, StanzaError(StanzaCondition::ServiceUnavailable));
        }
    } else if (stanza.name() == "iq") {
        bounce(stanza, StanzaError(StanzaCondition::ServiceUnavailable));
    }
    // Presence to an unavailable full JID is dropped (RFC 6121 §8.5.3.2.3).
}

void Router::routeToBare(Element& stanza, const Jid& from, const Jid& to, HandledToken& handled) {
    const std::string& name = stanza.name();
    std::string_view type = stanza.attr("type");
    if (name == "iq") {
        if (!handleIq(IqScope::Account, stanza, from, to)) {
            bounce(stanza, StanzaError(StanzaCondition::ServiceUnavailable));
        }
        return;
    }
    auto all = resources(to);
    std::vector<std::shared_ptr<Session>> targets;
    if (name == "presence") {
        for (auto& r : all) {
            if (r.available) {
                targets.push_back(r.session);
            }
        }
        deliverAll(targets, stanza, nullptr);
        return;
    }
    // Messages, RFC 6121 §8.5.2.
    if (type == "error") {
        return;
    }
    if (type == "groupchat") {
        bounce(stanza, StanzaError(StanzaCondition::ServiceUnavailable));
        return;
    }
    int best = -1;
    for (auto& r : all) {
        if (r.available && r.priority >= 0) {
            best = std::max(best, r.priority);
        }
    }
    for (auto& r : all) {
        // headline: every non-negative resource; normal and chat: the
        // highest-priority resources (all of them on a tie, §8.5.2.1.1).
        if (r.available && r.priority >= 0 && (type == "headline" || r.priority == best)) {
            targets.push_back(r.session);
        }
    }
    if (targets.empty()) {
        if (type != "headline") {
            deliveryFailed(stanza, to, FailureReason::NoResource, handled);
        }
        return;
    }
    deliverAll(targets, stanza, handled);
}

void Router::deliveryFailed(Element& stanza, const Jid& to, FailureReason reason, HandledToken handled) {
    DeliveryFailed f{&stanza, to, reason, std::move(handled)};
    hooks_.deliveryFailed.run(f);
}

IqResponder::IqResponder(Router& router, const IqRequest& request)
    : router_(router), reply_("iq", request.iq.ns()) {
    reply_.setAttr("to", request.from.str());
    reply_.setAttr("from", request.to.str());
    reply_.setAttr("id", request.iq.attr("id"));
}

void IqResponder::result(Element* payload) const {
    Element reply = reply_;
    reply.setAttr("type", "result");
    if (payload) {
        reply.addChild(std::move(*payload));
    }
    router_.route(std::move(reply));
}

void IqResponder::error(const StanzaError& error) const {
    Element original = reply_;
    // Rebuild as the request would look, so makeErrorReply swaps it back.
    original.setAttr("to", reply_.attr("from"));
    original.setAttr("from", reply_.attr("to"));
    original.setAttr("type", "get");
    router_.route(xmpp::makeErrorReply(original, error));
}

}  // namespace xmppd
