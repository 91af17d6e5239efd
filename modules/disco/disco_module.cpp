// XEP-0030 Service Discovery for the server: features and identities are
// computed from what the running modules registered, never hand-listed.
#include "modules/disco/disco_module.hpp"

#include "server/router.hpp"
#include "xmpp/ns.hpp"

namespace xmppd::modules {

namespace ns = xmpp::ns;
using xmpp::Element;

std::vector<OptionSpec> DiscoModule::options() {
    return {};
}

Registrations DiscoModule::start(ModuleContext& ctx) {
    Registrations regs;
    regs.features = {std::string(ns::kDiscoInfo), std::string(ns::kDiscoItems)};
    const DiscoRegistry* disco = &ctx.disco;
    const Router* router = &ctx.router;
    regs.iqHandlers.push_back(
        {IqScope::Server, std::string(ns::kDiscoInfo), [disco](const IqRequest& req, const IqResponder& r) {
             if (req.iq.attr("type") != "get") {
                 r.error(xmpp::StanzaError(xmpp::StanzaCondition::NotAllowed));
                 return;
             }
             if (req.payload.hasAttr("node")) {
                 r.error(xmpp::StanzaError(xmpp::StanzaCondition::ItemNotFound));
                 return;
             }
             Element q("query", std::string(ns::kDiscoInfo));
             for (const auto& id : disco->identities()) {
                 auto& e = q.addChild("identity", std::string(ns::kDiscoInfo));
                 e.setAttr("category", id.category).setAttr("type", id.type);
                 if (!id.name.empty()) {
                     e.setAttr("name", id.name);
                 }
             }
             for (const auto& f : disco->features()) {
                 q.addChild("feature", std::string(ns::kDiscoInfo)).setAttr("var", f);
             }
             r.result(&q);
         }});
    regs.iqHandlers.push_back(
        {IqScope::Server, std::string(ns::kDiscoItems), [router](const IqRequest& req, const IqResponder& r) {
             if (req.iq.attr("type") != "get") {
                 r.error(xmpp::StanzaError(xmpp::StanzaCondition::NotAllowed));
                 return;
             }
             // The connected external components (XEP-0114), each a service
             // that answers its own disco#info.
             Element q("query", std::string(ns::kDiscoItems));
             if (!req.payload.hasAttr("node")) {
                 for (const auto& [domain, session] : router->components()) {
                     if (session) {
                         q.addChild("item", std::string(ns::kDiscoItems)).setAttr("jid", domain);
                     }
                 }
             }
             r.result(&q);
         }});
    return regs;
}

}  // namespace xmppd::modules
