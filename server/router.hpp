#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/hooks.hpp"
#include "server/module.hpp"
#include "server/session.hpp"
#include "xmpp/element.hpp"
#include "xmpp/jid.hpp"

namespace xmppd {

struct ResourceView {
    std::shared_ptr<Session> session;
    std::string resource;
    int priority = 0;
    bool available = false;
    std::shared_ptr<const xmpp::Element> presence;  // the last broadcast presence
};

// The routing core: the session table (keyed by bare JID, then resource) and
// the RFC 6121 §8.5 delivery rules for local users. route() may be called
// from any worker; delivery posts to the target session's worker.
class Router {
  public:
    Router(std::vector<std::string> hosts, Hooks& hooks);

    bool isLocalHost(std::string_view domain) const;
    const std::vector<std::string>& hosts() const { return hosts_; }

    // External components (XEP-0114). The component domains are set once,
    // before the listeners open. Stanzas to a component domain (or any JID
    // at it) go to its attached session; while none is attached, iq and
    // message get <service-unavailable/> and presence is dropped.
    void setComponentDomains(const std::vector<std::string>& domains);
    bool isComponentDomain(std::string_view domain) const;
    // false when the domain is not a component's or already has a session.
    bool attachComponent(const std::string& domain, std::shared_ptr<Session> session);
    // Only the attached session itself can detach.
    void detachComponent(const std::string& domain, const Session* session);
    // Each component domain with its session (null while disconnected).
    std::vector<std::pair<std::string, std::shared_ptr<Session>>> components() const;

    // Binds a full JID to a session. Returns the session it replaced, if any
    // (the caller closes it with <conflict/>, RFC 6120 §7.7.2.2).
    std::shared_ptr<Session> bind(const xmpp::Jid& full, std::shared_ptr<Session> session);
    void unbind(const xmpp::Jid& full, const Session* session);
    void setPresence(const xmpp::Jid& full, bool available, int priority);
    // The presence last broadcast for a resource, for probe answers. Set by
    // whoever broadcasts (the roster module, in order with its broadcasts).
    void setLastPresence(const xmpp::Jid& full, std::shared_ptr<const xmpp::Element> presence);
    std::vector<ResourceView> resources(const xmpp::Jid& bare) const;

    // Routes a stanza whose 'from' the sender's session has already checked
    // and stamped. Errors go back to the sender.
    // handled is the sender's XEP-0198 token (may be null).
    void route(xmpp::Element stanza, HandledToken handled = nullptr);
    // Answers a stanza with an error (never an error to an error).
    void bounce(const xmpp::Element& stanza, const xmpp::StanzaError& error);

    // IQ handlers by scope and namespace. A second handler for the same key
    // is a startup error naming both modules.
    void addIqHandler(IqScope scope, const std::string& ns, const std::string& module, IqHandler handler);
    void removeIqHandler(IqScope scope, const std::string& ns);

    // Runs the delivery_failed fold (offline storage, then the bounce).
    void deliveryFailed(xmpp::Element& stanza, const xmpp::Jid& to, FailureReason reason,
                        HandledToken handled = nullptr);

    size_t sessionCount() const;
    size_t userCount() const;
    void forEachSession(const std::function<void(const ResourceView&, const std::string& bare)>& fn) const;

  private:
    struct Entry {
        std::shared_ptr<Session> session;
        int priority = 0;
        bool available = false;
        std::shared_ptr<const xmpp::Element> presence;
    };
    using ResourceMap = std::map<std::string, Entry, std::less<>>;
    struct Shard {
        mutable std::shared_mutex mutex;
        std::unordered_map<std::string, ResourceMap> users;
    };
    static constexpr size_t kShards = 64;

    Shard& shardFor(const std::string& bare) const;
    // Runs fn on the table entry of a full JID under its shard's lock, if bound.
    template <typename Fn>
    void withEntry(const xmpp::Jid& full, Fn&& fn);
    void routeToServer(xmpp::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to);
    void routeToUser(xmpp::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to,
                     HandledToken& handled);
    void routeToBare(xmpp::Element& stanza, const xmpp::Jid& from, const xmpp::Jid& to,
                     HandledToken& handled);
    bool routeToComponent(xmpp::Element& stanza, const xmpp::Jid& to);
    bool handleIq(IqScope scope, xmpp::Element& iq, const xmpp::Jid& from, const xmpp::Jid& to);

    std::vector<std::string> hosts_;
    Hooks& hooks_;
    mutable std::array<Shard, kShards> shards_;
    struct IqEntry {
        std::string module;
        IqHandler handler;
    };
    std::map<std::pair<IqScope, std::string>, IqEntry> iqHandlers_;
    mutable std::shared_mutex componentsMutex_;
    std::map<std::string, std::shared_ptr<Session>, std::less<>> components_;
};

}  // namespace xmppd
