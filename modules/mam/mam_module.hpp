#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0313 Message Archive Management (urn:xmpp:mam:2 with #extended): every
// chat or normal message with content that a local user sends or receives is
// archived per user, stamped with a XEP-0359 stanza-id on the way in, and
// queryable by its owner with filters and XEP-0059 paging. Preferences
// (XEP-0441), per-user size limit, retention purge, admin commands. See
// modules/mam/README.md.
class MamModule final : public Module {
  public:
    MamModule();
    ~MamModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "mam"; }
    std::vector<std::string> xeps() const override {
        return {"XEP-0313 1.1.3", "XEP-0359 0.7.0", "XEP-0441 0.2.0", "XEP-0059 1.0.0"};
    }
    Registrations start(ModuleContext& ctx) override;
    void stop() override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
