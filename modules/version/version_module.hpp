#pragma once

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0092 Software Version, for the server.
class VersionModule final : public Module {
  public:
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "version"; }
    std::vector<std::string> xeps() const override { return {"XEP-0092 1.1"}; }
    Registrations start(ModuleContext& ctx) override;
};

}  // namespace xmppd::modules
