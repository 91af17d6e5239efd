#include "server/component/component_commands.hpp"

#include <ctime>

#include "server/component/component_session.hpp"
#include "server/module_host.hpp"
#include "server/router.hpp"

namespace xmppd {

namespace {

std::string isoTime(std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

void registerComponentCommands(ModuleHost& host, Router& router) {
    Router* r = &router;
    host.addCommand(
        {"list_components",
         {},
         "Lists the configured components: domain, state, since, peer, stanzas in/out, queued bytes",
         [r](auto&, AdminReply reply) {
             std::string out;
             for (const auto& [domain, session] : r->components()) {
                 if (!session) {
                     out += domain + " disconnected\n";
                     continue;
                 }
                 // Every session the router holds for a component domain is one.
                 auto c = std::static_pointer_cast<ComponentSession>(session);
                 out += domain + " connected since=" + isoTime(c->connectedSince()) +
                        " peer=" + std::string(c->peer()) + " in=" + std::to_string(c->stanzasIn()) +
                        " out=" + std::to_string(c->stanzasOut()) +
                        " queue=" + std::to_string(c->queueGauge()) + "\n";
             }
             reply(0, out);
         }});
    host.addCommand({"disconnect_component",
                     {"DOMAIN"},
                     "Closes a component's stream (it may reconnect)",
                     [r](const std::vector<std::string>& a, AdminReply reply) {
                         for (const auto& [domain, session] : r->components()) {
                             if (domain != a[0]) {
                                 continue;
                             }
                             if (!session) {
                                 reply(1, domain + " is not connected\n");
                                 return;
                             }
                             session->closeWithError({xmpp::StreamCondition::PolicyViolation,
                                                      "disconnected by the administrator"});
                             reply(0, "Component " + domain + " disconnected\n");
                             return;
                         }
                         reply(1, "no component " + a[0] + "\n");
                     }});
}

}  // namespace xmppd
