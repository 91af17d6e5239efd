#include "modules/version/version_module.hpp"

#include <sys/utsname.h>

#include "xmpp/ns.hpp"

namespace xmppd::modules {

std::vector<OptionSpec> VersionModule::options() {
    return {
        {"show_os", OptionSpec::Type::Boolean, "false", 0, 1, "include the operating system in the answer"}};
}

Registrations VersionModule::start(ModuleContext& ctx) {
    Registrations regs;
    regs.features = {std::string(xmpp::ns::kVersion)};
    std::string name = ctx.server.name;
    std::string version = ctx.server.version;
    std::string os;
    if (ctx.options.boolean("show_os")) {
        utsname u{};
        if (uname(&u) == 0) {
            os = std::string(u.sysname) + " " + u.release;
        }
    }
    regs.iqHandlers.push_back({IqScope::Server, std::string(xmpp::ns::kVersion),
                               [name, version, os](const IqRequest& req, const IqResponder& r) {
                                   if (req.iq.attr("type") != "get") {
                                       r.error(xmpp::StanzaError(xmpp::StanzaCondition::NotAllowed));
                                       return;
                                   }
                                   xmpp::Element q("query", std::string(xmpp::ns::kVersion));
                                   q.addChild("name", std::string(xmpp::ns::kVersion)).addText(name);
                                   q.addChild("version", std::string(xmpp::ns::kVersion)).addText(version);
                                   if (!os.empty()) {
                                       q.addChild("os", std::string(xmpp::ns::kVersion)).addText(os);
                                   }
                                   r.result(&q);
                               }});
    return regs;
}

}  // namespace xmppd::modules
