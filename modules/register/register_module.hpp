#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0077 In-Band Registration with a username and a password: an account
// made on a stream that has not authenticated (rate-limited per address),
// and, once logged in, password change and account removal. Off unless
// listed under modules:, as on ejabberd and Prosody; the phone-number flow
// (sms_register) answers the same namespace, so only one of them may run.
class RegisterModule final : public Module {
  public:
    RegisterModule();
    ~RegisterModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "register"; }
    std::vector<std::string> xeps() const override { return {"XEP-0077 2.4"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
