#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/http/route_table.hpp"
#include "server/module.hpp"

namespace xmppd {

// Starts the configured modules, applies what they register (iq handlers,
// disco entries, admin commands, HTTP routes, migrations, keepalive) and
// removes it all on stop, so modules write no teardown code. Also answers
// disco's questions.
class ModuleHost final : public DiscoRegistry {
  public:
    ModuleHost(const ServerInfo& info, Hooks& hooks, Router& router, Accounts& accounts,
               storage::Pool& storage);
    ~ModuleHost() override;

    // Throws std::runtime_error on a conflict (two modules for one iq
    // namespace, or for one HTTP method and path).
    void start(const Config& config);
    void stop();

    std::vector<std::string> features() const override;
    std::vector<DiscoIdentity> identities() const override;
    const std::vector<AdminCommand>& commands() const { return commands_; }
    void addCommand(AdminCommand command) { commands_.push_back(std::move(command)); }
    // The routes of the running modules, plus the core's (added with owner "core").
    HttpRouteTable& httpRoutes() { return httpRoutes_; }
    // Every running module's pre-authentication iq handlers.
    std::vector<PreAuthIq> preAuthIqs() const;
    std::optional<Keepalive> keepalive() const { return keepalive_; }
    std::string streamFeatures() const;
    std::vector<std::string> moduleNames() const;

  private:
    struct Running {
        std::string name;
        std::unique_ptr<Module> module;
        ModuleOptions options;
        Registrations regs;
    };
    const ServerInfo& info_;
    Hooks& hooks_;
    Router& router_;
    Accounts& accounts_;
    storage::Pool& storage_;
    std::vector<std::unique_ptr<Running>> running_;
    std::vector<AdminCommand> commands_;
    HttpRouteTable httpRoutes_;
    std::optional<Keepalive> keepalive_;
};

}  // namespace xmppd
