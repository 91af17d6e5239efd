#pragma once

#include <cstdint>
#include <map>
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
// Oldest first, at most limit; copies held by the boot `skipHeld` (this
// run's messages still on their way to a device) are left out.
std::vector<StoredMessage> fetch(storage::Connection& c, const std::string& host, const std::string& user,
                                 int64_t limit, int64_t afterId = 0, int64_t skipHeld = 0);
// A held copy: the device acknowledged it (discard), or its session ended
// first and it becomes an ordinary stored message (release).
void discardHeld(storage::Connection& c, int64_t id);
void releaseHeld(storage::Connection& c, int64_t id);
// Removes the given ids (of that user only).
int64_t remove(storage::Connection& c, const std::string& host, const std::string& user,
               std::span<const int64_t> ids);
int64_t count(storage::Connection& c, const std::string& host, const std::string& user);
int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user);
int64_t removeOlderThan(storage::Connection& c, int64_t cutoff);

// Appends a batch inside a transaction the caller owns (group commit). Each
// recipient's account and stored count are read once per batch: one query
// per message instead of three, which is what PostgreSQL's round trips cost.
class BatchAppender {
  public:
    BatchAppender(storage::Connection& c, int64_t maxMessages) : c_(c), maxMessages_(maxMessages) {}
    // held != 0 stores a held copy (see fetch) and reports its id.
    AppendResult append(const std::string& host, const std::string& user, const std::string& sender,
                        int64_t now, const std::string& stanza, int64_t held = 0, int64_t* id = nullptr);

  private:
    storage::Connection& c_;
    int64_t maxMessages_;
    std::map<std::pair<std::string, std::string>, std::optional<int64_t>> stored_;  // nullopt: no such user
};
}  // namespace store

}  // namespace xmppd::offline
