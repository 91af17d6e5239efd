#include <spdlog/spdlog.h>

#include <variant>

#include "modules/roster/roster_impl.hpp"

namespace xmppd::modules {

using roster::Item;
using xmpp::Jid;

namespace {

roster::Sub mirror(roster::Sub s) {
    return s == roster::Sub::To ? roster::Sub::From : s == roster::Sub::From ? roster::Sub::To : s;
}

// The item `user` ends up with when an administrator sets its subscription
// to `sub`: name and groups from `item` (or kept, for the reverse side),
// pending flags that the new subscription answers are dropped.
Item withSubscription(const std::optional<Item>& existing, const Item& item, roster::Sub sub) {
    Item out = existing.value_or(item);
    out.contact = item.contact;
    out.inRoster = true;
    out.name = item.name;
    out.groups = item.groups;
    roster::SubState old = existing ? existing->state : roster::SubState{};
    out.state =
        roster::SubState{sub, old.pendingOut && !roster::hasTo(sub), old.pendingIn && !roster::hasFrom(sub),
                         old.preApproved && !roster::hasFrom(sub)};
    if (!out.state.pendingIn) {
        out.pendingStanza.clear();
    }
    return out;
}

struct Written {
    Jid owner;
    Item item;
    int64_t version;
};

// One side of add_rosteritem, inside the caller's transaction. Returns an
// error text (then the caller rolls back) or the item to push after the
// commit. The reverse side (reverse=true) keeps its own name and groups and
// is not created just to say 'none'.
std::variant<std::string, std::optional<Written>> writeSide(RosterModule::Impl& impl, storage::Connection& c,
                                                            const Jid& owner, const Item& wanted,
                                                            bool reverse) {
    if (!roster::store::lockAccount(c, owner.domain(), owner.local())) {
        return "no such user " + owner.bareStr() + "\n";
    }
    auto existing = roster::store::get(c, owner.domain(), owner.local(), wanted.contact);
    bool listed = existing && existing->inRoster;
    if (reverse && !listed && wanted.state.sub == roster::Sub::None) {
        return std::nullopt;
    }
    // The item limit holds here as for a roster set (RFC 6121 §2.3.3).
    if (!listed && roster::store::countInRoster(c, owner.domain(), owner.local()) >= impl.maxItems) {
        return "the roster of " + owner.bareStr() + " is full\n";
    }
    Item naming = wanted;
    if (reverse && listed) {
        naming.name = existing->name;
        naming.groups = existing->groups;
    }
    Item item = withSubscription(listed ? existing : std::nullopt, naming, wanted.state.sub);
    if (existing && !listed) {
        // A stored request from the contact: keep it unless answered.
        item.state.pendingIn = existing->state.pendingIn && !roster::hasFrom(wanted.state.sub);
        item.pendingStanza = item.state.pendingIn ? existing->pendingStanza : "";
    }
    roster::store::put(c, owner.domain(), owner.local(), item);
    int64_t ver = roster::store::bumpVersion(c, owner.domain(), owner.local());
    return std::optional<Written>(Written{owner, item, ver});
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
         "Adds USER@HOST to LOCALUSER's roster with SUBS (none, to, from, both); for a local contact the "
         "reverse item gets the mirrored subscription, in the same transaction",
         [impl](const std::vector<std::string>& a, AdminReply reply) {
             auto owner = Jid::fromParts(a[0], a[1]);
             auto contact = Jid::fromParts(a[2], a[3]);
             const std::string& subs = a[6];
             if (!owner || !contact) {
                 reply(1, "invalid JIDs\n");
                 return;
             }
             if (!impl->router->isLocalHost(owner->domain())) {
                 reply(1, owner->domain() + " is not a host of this server\n");
                 return;
             }
             if (subs != "none" && subs != "to" && subs != "from" && subs != "both") {
                 reply(2, "SUBS must be none, to, from or both\n");
                 return;
             }
             // The same checks as a roster set (RFC 6121 §2.3.2).
             xmpp::Element e("item", std::string(kRoster));
             e.setAttr("jid", contact->bareStr()).setAttr("name", a[4]);
             if (!a[5].empty()) {
                 e.addChild("group", std::string(kRoster)).addText(a[5]);
             }
             Item item;
             bool remove = false;
             if (auto err = parseRosterItem(e, *owner, impl->maxNameBytes, impl->maxGroups, item, remove)) {
                 reply(1, (err->text.empty() ? "invalid item" : err->text) + "\n");
                 return;
             }
             item.state.sub = roster::subFromString(subs);
             // ejabberdctl's behaviour: a local contact's roster mirrors the
             // subscription (to <-> from), so presence really flows as set.
             bool reverse = impl->router->isLocalHost(contact->domain());
             impl->runSerial(
                 [impl, owner = *owner, contact = *contact, item, reverse, reply](storage::Connection& c) {
                     std::vector<Written> written;
                     try {
                         storage::Transaction tx(c);
                         auto mine = writeSide(*impl, c, owner, item, false);
                         if (auto* err = std::get_if<std::string>(&mine)) {
                             reply(1, *err);
                             return;
                         }
                         if (auto& w = std::get<std::optional<Written>>(mine)) {
                             written.push_back(*w);
                         }
                         if (reverse) {
                             Item back;
                             back.contact = owner.bareStr();
                             back.name = owner.local();
                             back.state.sub = mirror(item.state.sub);
                             auto theirs = writeSide(*impl, c, contact, back, true);
                             if (auto* err = std::get_if<std::string>(&theirs)) {
                                 reply(1, *err);  // the transaction rolls back the first side too
                                 return;
                             }
                             if (auto& w = std::get<std::optional<Written>>(theirs)) {
                                 written.push_back(*w);
                             }
                         }
                         tx.commit();
                     } catch (const storage::Error& e) {
                         reply(1, std::string("storage: ") + e.what() + "\n");
                         return;
                     }
                     for (const auto& w : written) {
                         impl->push(w.owner, w.item, w.version, false);
                     }
                     reply(0, "");
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
