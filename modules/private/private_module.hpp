#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0049 Private XML Storage: a user keeps one element per namespace on
// the server (bookmarks of old clients, client settings), readable and
// writable only by the user.
class PrivateModule final : public Module {
  public:
    PrivateModule();
    ~PrivateModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "private"; }
    std::vector<std::string> xeps() const override { return {"XEP-0049 1.2"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
