#include "modules/carbons/carbons_module.hpp"

#include <mutex>
#include <set>

#include "server/router.hpp"
#include "xmpp/ns.hpp"

namespace xmppd::modules {

using xmpp::Element;
using xmpp::Jid;

namespace {

constexpr std::string_view kCarbons = "urn:xmpp:carbons:2";
constexpr std::string_view kForward = "urn:xmpp:forward:0";
constexpr std::string_view kHints = "urn:xmpp:hints";

// XEP-0280 §6 eligibility: chat messages, normal messages with a body, and
// the receipts and markers that go with them; never private, no-copy or
// already-forwarded carbons.
bool eligible(const Element& m) {
    if (m.name() != "message" || m.findChild("private", kCarbons) || m.findChild("no-copy", kHints)) {
        return false;
    }
    if (m.findChild("sent", kCarbons) || m.findChild("received", kCarbons)) {
        return false;
    }
    std::string_view type = m.attr("type");
    if (type == "chat") {
        return true;
    }
    if (type.empty() || type == "normal") {
        return m.findChild("body", m.ns()) || m.findChild("received", "urn:xmpp:receipts") ||
               m.firstChildInNs("urn:xmpp:chat-markers:0");
    }
    return false;
}

Element wrap(const Element& original, std::string_view direction, const Jid& user,
             const std::string& toResource) {
    Element carbon("message", std::string(xmpp::ns::kClient));
    carbon.setAttr("from", user.bareStr());
    carbon.setAttr("to", user.bare().withResource(toResource).str());
    carbon.setAttr("type", original.attr("type").empty() ? "normal" : original.attr("type"));
    carbon.addChild(std::string(direction), std::string(kCarbons))
        .addChild("forwarded", std::string(kForward))
        .addChild(original);
    return carbon;
}

}  // namespace

struct CarbonsModule::Impl {
    Router* router = nullptr;
    mutable std::mutex mutex;
    std::set<std::string> enabled;  // full JIDs

    bool isEnabled(const std::string& full) const {
        std::lock_guard lock(mutex);
        return enabled.count(full) != 0;
    }

    void onSent(const UserSent& s) {
        if (!eligible(*s.stanza)) {
            return;
        }
        // A message to oneself's other resource is already seen there.
        auto to = Jid::parse(s.stanza->attr("to"));
        for (auto& r : router->resources(s.from.bare())) {
            if (r.resource == s.from.resource() ||
                (to && to->bare() == s.from.bare() && to->resource() == r.resource)) {
                continue;
            }
            if (isEnabled(s.from.bare().withResource(r.resource).str())) {
                r.session->deliver(wrap(*s.stanza, "sent", s.from, r.resource));
            }
        }
    }

    void onInbound(const StanzaInbound& in) {
        if (!eligible(*in.stanza) || in.from.bare() == in.to.bare()) {
            return;
        }
        auto all = router->resources(in.to.bare());
        // Who gets the message itself: the addressed resource, or for a bare
        // JID the highest-priority available ones (Router's RFC 6121 rules).
        int best = -1;
        for (auto& r : all) {
            if (r.available && r.priority >= 0) {
                best = std::max(best, r.priority);
            }
        }
        bool addressedOnline = false;
        for (auto& r : all) {
            addressedOnline = addressedOnline || r.resource == in.to.resource();
        }
        for (auto& r : all) {
            bool direct = in.to.isBare() || !addressedOnline
                              ? (r.available && r.priority >= 0 && r.priority == best)
                              : r.resource == in.to.resource();
            if (!direct && isEnabled(in.to.bare().withResource(r.resource).str())) {
                r.session->deliver(wrap(*in.stanza, "received", in.to, r.resource));
            }
        }
    }
};

CarbonsModule::CarbonsModule() : impl_(std::make_shared<Impl>()) {}
CarbonsModule::~CarbonsModule() = default;

Registrations CarbonsModule::start(ModuleContext& ctx) {
    impl_->router = &ctx.router;
    auto impl = impl_;
    Registrations regs;
    regs.features = {std::string(kCarbons)};
    // Clients send <enable/> without 'to' (the account) or to the server.
    auto toggle = [impl](const IqRequest& req, const IqResponder& r) {
        bool on = req.payload.name() == "enable";
        if (req.iq.attr("type") != "set" || (!on && req.payload.name() != "disable") ||
            (req.from.bare() != req.to.bare() && !req.to.local().empty())) {
            r.error(xmpp::StanzaError(xmpp::StanzaCondition::BadRequest));
            return;
        }
        {
            std::lock_guard lock(impl->mutex);
            if (on) {
                impl->enabled.insert(req.from.str());
            } else {
                impl->enabled.erase(req.from.str());
            }
        }
        r.result();
    };
    regs.iqHandlers.push_back({IqScope::Account, std::string(kCarbons), toggle});
    regs.iqHandlers.push_back({IqScope::Server, std::string(kCarbons), toggle});
    regs.onHook(ctx.hooks.userSent, Band::Default, "carbons", [impl](UserSent& s) {
        impl->onSent(s);
        return Flow::Continue;
    });
    // After policy (blocking) has had its say, before delivery.
    regs.onHook(ctx.hooks.stanzaInbound, Band::Default, "carbons", [impl](StanzaInbound& in) {
        impl->onInbound(in);
        return Flow::Continue;
    });
    regs.onHook(ctx.hooks.sessionClosed, Band::Default, "carbons", [impl](const SessionEvent& e) {
        std::lock_guard lock(impl->mutex);
        impl->enabled.erase(e.jid.str());
    });
    return regs;
}

}  // namespace xmppd::modules
