#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0054 vcard-temp: a user stores their vCard and any local user reads
// it; XEP-0153: the hash of the vCard's photo goes into the user's available
// presence, so contacts know when to fetch the avatar. xmppctl get_vcard and
// set_vcard read and edit single fields.
class VcardModule final : public Module {
  public:
    VcardModule();
    ~VcardModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "vcard"; }
    std::vector<std::string> xeps() const override { return {"XEP-0054 1.2", "XEP-0153 1.1"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
