#include "modules/ping/ping_module.hpp"

#include "xmpp/ns.hpp"

namespace xmppd::modules {

std::vector<OptionSpec> PingModule::options() {
    return {
        {"interval", OptionSpec::Type::Integer, "120", 5, 86400,
         "seconds of silence before the server pings a client"},
        {"timeout", OptionSpec::Type::Integer, "30", 1, 3600,
         "seconds to wait for the answer before closing"},
    };
}

Registrations PingModule::start(ModuleContext& ctx) {
    Registrations regs;
    regs.features = {std::string(xmpp::ns::kPing)};
    // XEP-0199 §4.1 (client to server) and §4.3 (to a bare JID, answered by
    // the server on the account's behalf).
    auto pong = [](const IqRequest& req, const IqResponder& r) {
        if (req.iq.attr("type") == "get") {
            r.result();
        } else {
            r.error(xmpp::StanzaError(xmpp::StanzaCondition::ServiceUnavailable));
        }
    };
    regs.iqHandlers.push_back({IqScope::Server, std::string(xmpp::ns::kPing), pong});
    regs.iqHandlers.push_back({IqScope::Account, std::string(xmpp::ns::kPing), pong});
    regs.keepalive = Keepalive{static_cast<int>(ctx.options.integer("interval")),
                               static_cast<int>(ctx.options.integer("timeout"))};
    return regs;
}

}  // namespace xmppd::modules
