#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// Phone-number registration (issue 8): POST /v1/register/pin texts a PIN to
// a number, POST /v1/register/verify trades it for a device key that logs in
// with ordinary SCRAM as <number>@host. Protocol here; the PIN policy and
// its tables in pins.*, the number parsing in phone.*, the providers in
// gateway.*.
class SmsRegisterModule final : public Module {
  public:
    SmsRegisterModule();
    ~SmsRegisterModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "sms_register"; }
    std::vector<std::string> xeps() const override { return {"XEP-0077 2.4", "XEP-0004 2.13"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
