#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0160 offline messages: a message that no session of its recipient can
// take is stored (group-committed before the sender's XEP-0198 ack), and
// delivered in order at the next login that sends initial presence; it is
// removed once the client accepted it (acked with XEP-0198, or written out
// for clients without stream management).
class OfflineModule final : public Module {
  public:
    OfflineModule();
    ~OfflineModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "offline"; }
    std::vector<std::string> xeps() const override {
        return {"XEP-0160 1.0.1", "XEP-0203 2.0", "XEP-0334 0.3.0"};
    }
    Registrations start(ModuleContext& ctx) override;
    void stop() override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
