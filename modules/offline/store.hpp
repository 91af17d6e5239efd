#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::offline {

struct StoredMessage {
    int64_t id = 0;        // increasing per store: delivery order
    std::string sender;    // full JID of the sender
    int64_t storedAt = 0;  // unix seconds, for the XEP-0203 delay stamp
    std::string stanza;    // the message as serialized XML, byte for byte
};

enum class AppendResult { Stored, NoSuchUser, QuotaExceeded };

// XEP-0160 offline storage: one table `offline_messages`, host in its key.
// Written once against storage::Connection for both SQLite and PostgreSQL.
namespace store {
std::span<const storage::Migration> migrations();
// Appends in one transaction unless the user does not exist or already has
// maxMessages stored (nothing already stored is ever dropped for a new one).
AppendResult append(storage::Connection& c, const std::string& host, const std::string& user,
                    const std::string& sender, int64_t now, const std::string& stanza, int64_t maxMessages);
// The same inside a transaction the caller owns (group commit).
AppendResult appendInTransaction(storage::Connection& c, const std::string& host, const std::string& user,
                                 const std::string& sender, int64_t now, const std::string& stanza,
                                 int64_t maxMessages);
// Oldest first, at most limit.
std::vector<StoredMessage> fetch(storage::Connection& c, const std::string& host, const std::string& user,
                                 int64_t limit, int64_t afterId = 0);
// Removes the given ids (of that user only).
int64_t remove(storage::Connection& c, const std::string& host, const std::string& user,
               std::span<const int64_t> ids);
int64_t count(storage::Connection& c, const std::string& host, const std::string& user);
int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user);
int64_t removeOlderThan(storage::Connection& c, int64_t cutoff);
}  // namespace store

}  // namespace xmppd::offline
