#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0012 Last Activity, answered by the server: to the server, its uptime;
// to a user's bare JID, 0 while one of their resources is available, else
// the seconds since their last session ended, with the status text of their
// last unavailable presence. The logout time is stored when the user's last
// session closes.
//
// Who may ask: XEP-0012 §4 limits a user's last activity to entities
// subscribed to their presence. There is no roster module yet, so any local
// user may ask (blocked entities never reach us: blocking answers them
// first); the subscription check belongs here once the roster exists.
class LastModule final : public Module {
  public:
    LastModule();
    ~LastModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "last"; }
    std::vector<std::string> xeps() const override { return {"XEP-0012 2.0"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
