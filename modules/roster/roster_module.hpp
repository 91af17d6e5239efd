#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// RFC 6121 rosters and presence subscriptions: roster get/set/remove with
// pushes and versioning (XEP-0237), the subscription state machine of
// Appendix A, presence broadcast to subscribers, probes answered at initial
// presence, directed presence undone at logout, and requests to offline
// users kept until they log in.
class RosterModule final : public Module {
  public:
    RosterModule();
    ~RosterModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "roster"; }
    std::vector<std::string> xeps() const override { return {"RFC 6121", "XEP-0237 1.3"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
