#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::blocking {

enum class ChangeResult { Done, NoSuchUser, TooMany };

// XEP-0191 block lists: table `blocklist`, one row per (host, username,
// blocked JID). JIDs are stored normalised (xmpp::Jid::str()). Written once
// against storage::Connection for SQLite and PostgreSQL.
namespace store {
std::span<const storage::Migration> migrations();
// Sorted by JID.
std::vector<std::string> list(storage::Connection& c, const std::string& host, const std::string& user);
// Adds the JIDs (already present ones are kept) in one transaction; nothing
// is written if the list would then hold more than maxItems.
ChangeResult block(storage::Connection& c, const std::string& host, const std::string& user,
                   const std::vector<std::string>& jids, int64_t maxItems);
// Removes the JIDs, or every JID when jids is empty, in one transaction.
ChangeResult unblock(storage::Connection& c, const std::string& host, const std::string& user,
                     const std::vector<std::string>& jids);
int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user);
}  // namespace store

}  // namespace xmppd::blocking
