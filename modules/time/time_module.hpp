#pragma once

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0202 Entity Time: the server answers <time xmlns='urn:xmpp:time'/>
// with its clock in UTC (tzo +00:00: the server reports UTC whatever the
// host's zone, so answers do not depend on the machine's configuration).
class TimeModule final : public Module {
  public:
    static std::vector<OptionSpec> options() { return {}; }
    std::string_view name() const override { return "time"; }
    std::vector<std::string> xeps() const override { return {"XEP-0202 2.0"}; }
    Registrations start(ModuleContext& ctx) override;
};

}  // namespace xmppd::modules
