#pragma once

#include <memory>

#include "server/module.hpp"

namespace xmppd::modules {

// XEP-0191 Blocking Command: a user's block list (get, block, unblock,
// unblock all) with pushes to the resources that asked for it; blocked JIDs
// get nothing through to the user (messages and iq requests are answered
// <service-unavailable/> as if the user were not there, presence is
// dropped), and the user's own stanzas to them are refused with
// <not-acceptable/><blocked xmlns='urn:xmpp:blocking:errors'/>.
//
// The lists live in memory for online users and a bounded set of offline
// ones (BlocklistCache); a stanza for a user whose list is not there yet
// waits for one load instead of reading storage itself.
//
// Not done: XEP-0191 §3.3's unavailable presence to a newly blocked contact
// who had the user's presence, and current presence after unblocking; that
// needs the roster's subscription state (and the directed-presence list).
class BlockingModule final : public Module {
  public:
    BlockingModule();
    ~BlockingModule() override;
    static std::vector<OptionSpec> options();
    std::string_view name() const override { return "blocking"; }
    std::vector<std::string> xeps() const override { return {"XEP-0191 1.3"}; }
    Registrations start(ModuleContext& ctx) override;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace xmppd::modules
