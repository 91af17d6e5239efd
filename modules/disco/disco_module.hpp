#pragma once

#include "server/module.hpp"

namespace xmppd::modules {

class DiscoModule final : public Module {
  public:
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "disco"; }
    std::vector<std::string> xeps() const override { return {"XEP-0030 2.5rc3"}; }
    Registrations start(ModuleContext& ctx) override;
};

}  // namespace xmppd::modules
