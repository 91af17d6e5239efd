#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::last {

struct LastSeen {
    int64_t logoutAt = 0;  // unix seconds of the last logout
    std::string status;    // the <status/> of the last unavailable presence, if any
};

struct Lookup {
    bool account = false;          // the account exists
    std::optional<LastSeen> seen;  // empty when the user never logged out since we record it
};

// XEP-0012 last logout per user: table `last_activity`, (host, username) its
// key. Written once against storage::Connection for SQLite and PostgreSQL.
namespace store {
std::span<const storage::Migration> migrations();
Lookup get(storage::Connection& c, const std::string& host, const std::string& user);
// Replaces the record in one transaction; false (nothing written) when the
// account does not exist.
bool set(storage::Connection& c, const std::string& host, const std::string& user, const LastSeen& seen);
int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user);
}  // namespace store

}  // namespace xmppd::last
