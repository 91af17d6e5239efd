#pragma once

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0199: answers pings to the server, and asks the c2s core to ping
// silent clients (interval/timeout) to detect dead connections.
class PingModule final : public Module {
  public:
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "ping"; }
    std::vector<std::string> xeps() const override { return {"XEP-0199 2.0.1"}; }
    Registrations start(ModuleContext& ctx) override;
};

}  // namespace xmppd::modules
