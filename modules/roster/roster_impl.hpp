#pragma once
// Internal to modules/roster.

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "modules/roster/roster_module.hpp"
#include "modules/roster/store.hpp"
#include "server/router.hpp"
#include "storage/pool.hpp"

namespace xmppd::modules {

struct RosterModule::Impl : std::enable_shared_from_this<RosterModule::Impl> {
    Router* router = nullptr;
    storage::Pool* pool = nullptr;
    int64_t maxItems = 1000;
    size_t maxNameBytes = 1023;
    size_t maxGroups = 64;

    // Every roster job runs through one lane, in order: on PostgreSQL the pool
    // has several threads, and two changes to one subscription (or two
    // presence broadcasts) must not overtake each other. Jobs queued while
    // the lane runs (a subscription reaching a local contact) run in the
    // same pool job, so a draining pool at shutdown cannot drop them.
    using Job = std::function<void(storage::Connection&)>;
    std::mutex laneMutex;
    std::deque<Job> lane;
    bool laneRunning = false;
    bool runSerial(Job job);
    void drainLane(storage::Connection& c);

    std::mutex mutex;
    std::set<std::string> interested;                       // full JIDs that fetched the roster (§2.1.6)
    std::map<std::string, std::set<std::string>> directed;  // full JID → JIDs it sent directed presence to
    std::map<std::string, xmpp::Element> lastUnavailable;   // bare JID → its last unavailable presence

    // roster_module.cpp
    void handleRosterIq(const IqRequest& req, const IqResponder& r);
    void push(const xmpp::Jid& user, const roster::Item& item, int64_t version, bool removed);
    static xmpp::Element itemElement(const roster::Item& item, bool removed);
    void answerSubscriptionQuery(const SubscriptionQuery& q);

    // presence.cpp
    void onUserSent(UserSent& s, Flow& flow);
    void onInbound(StanzaInbound& in, Flow& flow);
    void onPresenceChanged(const PresenceChanged& p);
    void onSessionClosed(const SessionEvent& e);
    void outboundSubscription(const xmpp::Jid& user, const xmpp::Jid& contact, roster::SubType type,
                              xmpp::Element stanza);
    void inboundSubscription(const xmpp::Jid& contact, const xmpp::Jid& user, roster::SubType type,
                             xmpp::Element stanza);
    void sendCurrentPresence(const xmpp::Jid& user, const xmpp::Jid& contact, bool unavailable);
    void onBlocklistChanged(const BlocklistChanged& b);
    void sendUnavailableToBlocked(const xmpp::Jid& user, const xmpp::Jid& target);
    void deliverToAvailable(const xmpp::Jid& bare, const xmpp::Element& stanza);
};

constexpr std::string_view kRoster = "jabber:iq:roster";

// Validates one <item/> of a roster set (RFC 6121 §2.3.2, §2.1.2); also
// used for xmppctl add_rosteritem, so both paths accept the same items.
std::optional<xmpp::StanzaError> parseRosterItem(const xmpp::Element& e, const xmpp::Jid& owner,
                                                 size_t maxName, size_t maxGroups, roster::Item& out,
                                                 bool& remove);

// xmppctl get_roster, add_rosteritem, delete_rosteritem (roster_admin.cpp).
void addRosterCommands(Registrations& regs, const std::shared_ptr<RosterModule::Impl>& impl);

}  // namespace xmppd::modules
