#include <spdlog/spdlog.h>

#include "modules/roster/roster_impl.hpp"

namespace xmppd::modules {

using roster::Item;
using xmpp::Jid;

namespace {

// Writes one item and pushes it; the caller's job runs on a storage thread.
void setItem(RosterModule::Impl& impl, storage::Connection& c, const Jid& owner, Item item) {
    storage::Transaction tx(c);
    auto existing = roster::store::get(c, owner.domain(), owner.local(), item.contact);
    if (existing) {
        item.state.pendingIn = existing->state.pendingIn;
        item.pendingStanza = existing->pendingStanza;
    }
    roster::store::put(c, owner.domain(), owner.local(), item);
    int64_t ver = roster::store::bumpVersion(c, owner.domain(), owner.local());
    tx.commit();
    impl.push(owner, item, ver, false);
}

// Whether user's roster can take contact: it is there already, or there is room.
bool fits(RosterModule::Impl& impl, storage::Connection& c, const Jid& user, const Jid& contact) {
    auto existing = roster::store::get(c, user.domain(), user.local(), contact.bareStr());
    return (existing && existing->inRoster) ||
           roster::store::countInRoster(c, user.domain(), user.local()) < impl.maxItems;
}

roster::Sub mirror(roster::Sub s) {
    return s == roster::Sub::To ? roster::Sub::From : s == roster::Sub::From ? roster::Sub::To : s;
}

}  // namespace

void addRosterCommands(Registrations& regs, const std::shared_ptr<RosterModule::Impl>& impl) {
    regs.commands.push_back(
        {"get_roster",
         {"USER", "HOST"},
         "Lists a user's roster: contact, name, subscription, ask, groups",
         [impl](const std::vector<std::string>& a, AdminReply reply) {
             auto owner = Jid::fromParts(a[0], a[1]);
             if (!owner) {
                 reply(1, "invalid user or host\n");
                 return;
             }
             impl->runSerial([owner = *owner, reply](storage::Connection& c) {
                 try {
                     std::string out;
                     for (const auto& i : roster::store::load(c, owner.domain(), owner.local())) {
                         if (!i.inRoster) {
                             continue;
                         }
                         std::string groups;
                         for (const auto& g : i.groups) {
                             groups += (groups.empty() ? "" : ";") + g;
                         }
                         out += i.contact + "\t" + i.name + "\t" +
                                std::string(roster::toString(i.state.sub)) + "\t" +
                                (i.state.pendingOut ? "subscribe" : "none") + "\t" + groups + "\n";
                     }
                     reply(0, out);
                 } catch (const storage::Error& e) {
                     reply(1, std::string("storage: ") + e.what() + "\n");
                 }
             });
         }});
    regs.commands.push_back(
        {"add_rosteritem",
         {"LOCALUSER", "LOCALHOST", "USER", "HOST", "NICK", "GROUP", "SUBS"},
         "Adds USER@HOST to LOCALUSER's roster with SUBS (none, to, from, both); for a local contact, 'both' "
         "also adds the reverse item",
         [impl](const std::vector<std::string>& a, AdminReply reply) {
             auto owner = Jid::fromParts(a[0], a[1]);
             auto contact = Jid::fromParts(a[2], a[3]);
             const std::string& subs = a[6];
             if (!owner || !contact || *owner == *contact) {
                 reply(1, "invalid or identical JIDs\n");
                 return;
             }
             if (subs != "none" && subs != "to" && subs != "from" && subs != "both") {
                 reply(2, "SUBS must be none, to, from or both\n");
                 return;
             }
             Item item;
             item.contact = contact->bareStr();
             item.name = a[4];
             if (!a[5].empty()) {
                 item.groups.push_back(a[5]);
             }
             item.state.sub = roster::subFromString(subs);
             bool reverse = subs == "both" && impl->router->isLocalHost(contact->domain());
             impl->runSerial(
                 [impl, owner = *owner, contact = *contact, item, reverse, reply](storage::Connection& c) {
                     try {
                         // The item limit holds here as for a roster set (RFC 6121 §2.3.3).
                         for (auto [user, other] : {std::pair{owner, contact}, std::pair{contact, owner}}) {
                             if ((user == owner || reverse) && !fits(*impl, c, user, other)) {
                                 reply(1, "the roster of " + user.bareStr() + " is full\n");
                                 return;
                             }
                         }
                         setItem(*impl, c, owner, item);
                         if (reverse) {
                             Item back;
                             back.contact = owner.bareStr();
                             back.name = owner.local();
                             back.state.sub = mirror(item.state.sub);
                             setItem(*impl, c, contact, back);
                         }
                         reply(0, "");
                     } catch (const storage::Error& e) {
                         reply(1, std::string("storage: ") + e.what() + "\n");
                     }
                 });
         }});
    regs.commands.push_back(
        {"delete_rosteritem",
         {"LOCALUSER", "LOCALHOST", "USER", "HOST"},
         "Removes USER@HOST from LOCALUSER's roster",
         [impl](const std::vector<std::string>& a, AdminReply reply) {
             auto owner = Jid::fromParts(a[0], a[1]);
             auto contact = Jid::fromParts(a[2], a[3]);
             if (!owner || !contact) {
                 reply(1, "invalid JIDs\n");
                 return;
             }
             impl->runSerial([impl, owner = *owner, contact = *contact, reply](storage::Connection& c) {
                 try {
                     storage::Transaction tx(c);
                     auto existing = roster::store::get(c, owner.domain(), owner.local(), contact.bareStr());
                     if (!existing || !existing->inRoster) {
                         reply(1, "no such roster item\n");
                         return;
                     }
                     roster::store::remove(c, owner.domain(), owner.local(), contact.bareStr());
                     int64_t ver = roster::store::bumpVersion(c, owner.domain(), owner.local());
                     tx.commit();
                     impl->push(owner, *existing, ver, true);
                     reply(0, "");
                 } catch (const storage::Error& e) {
                     reply(1, std::string("storage: ") + e.what() + "\n");
                 }
             });
         }});
}

}  // namespace xmppd::modules
