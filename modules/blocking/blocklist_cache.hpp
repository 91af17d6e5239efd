#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "xmpp/jid.hpp"

namespace xmppd::blocking {

// A block list: normalised JIDs. Lists are immutable once shared; a change
// installs a new one.
using Items = std::set<std::string, std::less<>>;
using Snapshot = std::shared_ptr<const Items>;

// XEP-0191 §3.4, with XEP-0016 §2.1's matching: an item user@domain/resource
// or domain/resource matches only that JID; user@domain matches it and every
// resource of it; domain matches the domain and every JID at it.
bool matches(const Items& items, const xmpp::Jid& jid);

// Block lists of the users the server is dealing with, so that blocking
// never reads storage per stanza: loaded when a user's first session binds,
// kept while they have sessions, and afterwards in a bounded set of recently
// needed offline users (inbound traffic to offline users needs their list
// too). Loads are the caller's: this class hands out a generation to load
// for and takes the result back. Thread-safe; waiters run on the thread that
// completes the load, outside any lock.
class BlocklistCache {
  public:
    // A null snapshot means the list could not be loaded.
    using Waiter = std::function<void(Snapshot)>;

    explicit BlocklistCache(size_t offlineCapacity, size_t maxWaiters = 256);

    // The user's list if it is loaded; null otherwise.
    Snapshot find(const std::string& bare) const;
    // Whether the user has an entry at all (online, loading, or cached).
    bool tracked(const std::string& bare) const;

    // A session of the user bound: returns a generation when the caller must
    // load the list (then loaded() or loadFailed()).
    std::optional<uint64_t> sessionBound(const std::string& bare);
    // A session closed: it is no longer interested in pushes; after the last
    // one the list stays as an offline entry (or goes, with capacity 0).
    void sessionClosed(const std::string& bare, const std::string& resource);

    struct Wait {
        Snapshot ready;                // already loaded: the waiter was not kept
        std::optional<uint64_t> load;  // the caller must start this load
        bool refused = false;          // too many waiting already: the waiter was not kept
    };
    // Runs waiter once the list is loaded (or failed to load).
    Wait whenLoaded(const std::string& bare, Waiter waiter);
    void loaded(const std::string& bare, uint64_t generation, Snapshot items);
    void loadFailed(const std::string& bare, uint64_t generation);
    // A committed change: the fresh list replaces what is cached, including
    // any load already under way. Nothing happens for users not cached.
    void replace(const std::string& bare, Snapshot items);

    // One change of a user's list at a time (write, re-read, replace): runs
    // change now, or after the running change's finishChange().
    void startChange(const std::string& bare, std::function<void()> change);
    void finishChange(const std::string& bare);

    // Resources that asked for the list get pushes (XEP-0191 §3.3).
    void addInterested(const std::string& bare, const std::string& resource);
    std::vector<std::string> interested(const std::string& bare) const;

    // Drops the user (account removed); their waiters run with null.
    void forget(const std::string& bare);

    size_t size() const;

  private:
    enum class State { Absent, Loading, Ready };
    struct Entry {
        int sessions = 0;
        State state = State::Absent;
        uint64_t generation = 0;
        Snapshot items;
        std::vector<Waiter> waiters;
        std::set<std::string> interested;
        bool changing = false;
        std::deque<std::function<void()>> changes;
        bool inOffline = false;
        std::list<std::string>::iterator offlinePos;
    };
    struct Shard {
        mutable std::shared_mutex mutex;
        std::unordered_map<std::string, Entry> users;
        std::list<std::string> offline;  // users without sessions, oldest first
    };
    static constexpr size_t kShards = 16;

    Shard& shardFor(const std::string& bare) const;
    // Puts an entry where it belongs after a change (offline list, erased,
    // evictions); `it` is invalid afterwards.
    void settle(Shard& shard, std::unordered_map<std::string, Entry>::iterator it);
    void finishLoad(const std::string& bare, std::optional<uint64_t> generation, Snapshot items, bool ok);

    size_t offlineCapacityPerShard_;
    size_t maxWaiters_;
    std::atomic<uint64_t> nextGeneration_{1};
    mutable std::array<Shard, kShards> shards_;
};

}  // namespace xmppd::blocking
