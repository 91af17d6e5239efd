#pragma once

// The message archive's tables, written once against storage::Connection for
// SQLite and PostgreSQL:
//
//   mam_messages(host, username, id, timestamp, with_jid, with_resource,
//                direction, stanza)   PRIMARY KEY (host, username, id)
//   mam_prefs(host, username, default_mode)     PRIMARY KEY (host, username)
//   mam_prefs_jids(host, username, jid, list)   PRIMARY KEY (host, username, jid)
//
// id is the archive id (ids.hpp), timestamp its millisecond part, with_jid
// the other party's bare JID and with_resource its resource ("" if none),
// direction 'in' or 'out' as seen by the archive's owner, stanza the message
// as serialized XML, byte for byte.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "modules/mam/prefs.hpp"
#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::mam {

enum class Direction { In, Out };

struct ArchivedMessage {
    int64_t id = 0;
    int64_t timestamp = 0;  // milliseconds since the Unix epoch
    std::string withJid;
    std::string withResource;
    Direction direction = Direction::In;
    std::string stanza;

    bool operator==(const ArchivedMessage&) const = default;
};

struct NewMessage {
    std::string host;
    std::string user;
    int64_t id = 0;  // from IdGenerator; the timestamp is its millisecond part
    std::string withJid;
    std::string withResource;
    Direction direction = Direction::In;
    std::string stanza;
};

// A query of one user's archive: the XEP-0313 form fields, then the
// XEP-0059 page. Bounds are inclusive for time and exclusive for ids.
struct Query {
    std::string host;
    std::string user;
    std::string withJid;       // "" = any
    std::string withResource;  // "" = any resource of withJid
    std::optional<int64_t> startMs;
    std::optional<int64_t> endMs;
    std::optional<int64_t> afterId;
    std::optional<int64_t> beforeId;
    std::vector<int64_t> ids;  // empty = any
    // The page: forward from rsmAfter (or the start), or backward from
    // rsmBefore (or, with lastPage, from the end).
    std::optional<int64_t> rsmAfter;
    std::optional<int64_t> rsmBefore;
    bool lastPage = false;
    int64_t max = 50;
};

struct Page {
    std::vector<ArchivedMessage> items;  // oldest first
    int64_t count = 0;                   // items matching the form, whatever the page
    bool complete = false;               // no more items in the paging direction
};

// How many messages each user's archive holds, remembered between batches so
// that the per-user limit does not cost a COUNT(*) per write. Safe from
// several storage threads. Entries may run behind the database when another
// server shares it; the limit check then recounts before trimming.
class ArchiveCounts {
  public:
    explicit ArchiveCounts(size_t maxEntries = 100000) : maxEntries_(maxEntries) {}
    std::optional<int64_t> find(const std::string& key) const;
    void set(const std::string& key, int64_t count);
    void clear();

  private:
    size_t maxEntries_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, int64_t> counts_;
};

enum class AppendResult { Stored, NoSuchUser };

namespace store {

std::span<const storage::Migration> migrations();

// Writes a batch in one transaction: messages of users that do not exist
// are skipped (NoSuchUser); then each user's archive is trimmed to its
// newest maxPerUser messages (0 = no limit), oldest first (XEP-0313 §3.2:
// no holes). counts may be null. Throws storage::Error (a UniqueViolation if
// an id is taken); the transaction is then rolled back.
std::vector<AppendResult> append(storage::Connection& c, std::span<const NewMessage> batch,
                                 int64_t maxPerUser, ArchiveCounts* counts);

// nullopt when an id the query names (after-id, before-id, ids, RSM after or
// before) is not in the archive: XEP-0313 §4.1.3 and §4.3.3, item-not-found.
std::optional<Page> query(storage::Connection& c, const Query& q);

bool contains(storage::Connection& c, const std::string& host, const std::string& user, int64_t id);
int64_t count(storage::Connection& c, const std::string& host, const std::string& user);
// The oldest and newest message, for XEP-0313 §5 metadata.
std::optional<std::pair<ArchivedMessage, ArchivedMessage>> bounds(storage::Connection& c,
                                                                  const std::string& host,
                                                                  const std::string& user);

// Deletes the archive and the preferences of a user.
int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user);
// Deletes every message older than cutoffMs (milliseconds since the epoch).
int64_t removeOlderThan(storage::Connection& c, int64_t cutoffMs);

// Preferences; users without a row use the configured default.
std::optional<Prefs> loadPrefs(storage::Connection& c, const std::string& host, const std::string& user);
// Every stored preference, keyed by bare JID (user@host).
std::unordered_map<std::string, Prefs> loadAllPrefs(storage::Connection& c);
void savePrefs(storage::Connection& c, const std::string& host, const std::string& user, const Prefs& prefs);

}  // namespace store
}  // namespace xmppd::mam
