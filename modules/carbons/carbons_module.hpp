#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0280 Message Carbons: a user's other carbons-enabled resources get
// copies of the chat messages the user sends (<sent/>) and receives at
// another resource (<received/>), unless the sender marked them <private/>
// or <no-copy/> (XEP-0334).
class CarbonsModule final : public Module {
  public:
    CarbonsModule();
    ~CarbonsModule() override;
    static std::vector<OptionSpec> options() { return {}; }
    std::string_view name() const override { return "carbons"; }
    std::vector<std::string> xeps() const override { return {"XEP-0280 1.0.1", "XEP-0297 1.0"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
