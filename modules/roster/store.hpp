#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "modules/roster/subscription.hpp"
#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::roster {

// One contact of one user. Rows with inRoster=false only carry a pending
// inbound request (RFC 6121 "None + Pending In" for a stranger): kept so the
// request survives restarts and is shown at the next login, not listed.
struct Item {
    std::string contact;  // bare JID
    bool inRoster = true;
    std::string name;
    SubState state;
    std::vector<std::string> groups;
    std::string pendingStanza;  // the stored subscription request, if any
};

namespace store {
std::span<const storage::Migration> migrations();
// Whether the account exists; on PostgreSQL it also locks the account row
// until the transaction ends, so a request is never stored for an account
// removed meanwhile. Call inside the transaction of the change.
bool lockAccount(storage::Connection& c, const std::string& host, const std::string& user);
std::vector<Item> load(storage::Connection& c, const std::string& host, const std::string& user);
std::optional<Item> get(storage::Connection& c, const std::string& host, const std::string& user,
                        const std::string& contact);
int64_t countInRoster(storage::Connection& c, const std::string& host, const std::string& user);
void put(storage::Connection& c, const std::string& host, const std::string& user, const Item& item);
bool remove(storage::Connection& c, const std::string& host, const std::string& user,
            const std::string& contact);
int64_t version(storage::Connection& c, const std::string& host, const std::string& user);
// Increments and returns the roster version (XEP-0237); call inside the
// transaction of the change it versions.
int64_t bumpVersion(storage::Connection& c, const std::string& host, const std::string& user);
void removeUser(storage::Connection& c, const std::string& host, const std::string& user);
}  // namespace store

}  // namespace xmppd::roster
