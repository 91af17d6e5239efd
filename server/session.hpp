#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "server/handled_token.hpp"
#include "xmpp/element.hpp"
#include "xmpp/errors.hpp"
#include "xmpp/jid.hpp"

namespace xmppd {

class Worker;

// What the router and modules see of a session: an address and a way to hand
// it stanzas. A session's state lives on its worker; deliver() and
// closeWithError() are safe from any thread (they post to that worker).
class Session : public std::enable_shared_from_this<Session> {
  public:
    virtual ~Session() = default;
    virtual uint64_t id() const = 0;
    // Full JID once bound; empty before.
    virtual const xmpp::Jid& jid() const = 0;
    virtual Worker& worker() = 0;
    virtual void deliver(xmpp::Element stanza) = 0;
    // A message the sender's XEP-0198 'h' waits for: the session keeps
    // `handled` until its client acknowledges the message or a durable
    // copy is made (hooks.hpp, DeliveryPending). The default drops it.
    virtual void deliverHeld(xmpp::Element stanza, HandledToken handled) {
        (void)handled;
        deliver(std::move(stanza));
    }
    // Delivers and reports whether the client accepted the stanza: acked
    // with XEP-0198, or written out when stream management is off. false
    // means the session ended first (the caller still owns the stanza).
    // done runs on this session's worker.
    virtual void deliverTracked(xmpp::Element stanza, std::function<void(bool accepted)> done) = 0;
    virtual void closeWithError(xmpp::StreamError error) = 0;
    // Bytes waiting to be written: the queue-length health gauge.
    virtual size_t queuedBytes() const = 0;
    virtual std::string_view peer() const = 0;
    // Which of the account's keys the session logged in with (a device key),
    // empty for the account's own password or for a session with no account.
    // Set before the session is bound and never changed after.
    virtual std::string_view credentialId() const { return {}; }
};

}  // namespace xmppd
