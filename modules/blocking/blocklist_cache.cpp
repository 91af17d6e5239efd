#include "modules/blocking/blocklist_cache.hpp"

#include <mutex>

namespace xmppd::blocking {

bool matches(const Items& items, const xmpp::Jid& jid) {
    if (items.empty() || jid.empty()) {
        return false;
    }
    if (items.count(jid.str()) != 0) {
        return true;  // the exact JID, full or bare
    }
    if (!jid.local().empty() && !jid.isBare() && items.count(jid.bareStr()) != 0) {
        return true;  // user@domain covers its resources
    }
    return items.count(jid.domain()) != 0;  // domain covers everything at it
}

BlocklistCache::BlocklistCache(size_t offlineCapacity, size_t maxWaiters)
    : offlineCapacityPerShard_((offlineCapacity + kShards - 1) / kShards), maxWaiters_(maxWaiters) {}

BlocklistCache::Shard& BlocklistCache::shardFor(const std::string& bare) const {
    return shards_[std::hash<std::string>{}(bare) % kShards];
}

void BlocklistCache::settle(Shard& shard, std::unordered_map<std::string, Entry>::iterator it) {
    Entry& e = it->second;
    bool busy = e.changing || !e.waiters.empty() || e.state == State::Loading;
    if (e.sessions > 0) {
        if (e.inOffline) {
            shard.offline.erase(e.offlinePos);
            e.inOffline = false;
        }
        return;
    }
    if (e.state == State::Absent && !busy) {
        // Nothing known and nothing waiting: no reason to keep it.
        if (e.inOffline) {
            shard.offline.erase(e.offlinePos);
        }
        shard.users.erase(it);
    } else if (!e.inOffline) {
        e.offlinePos = shard.offline.insert(shard.offline.end(), it->first);
        e.inOffline = true;
    }
    // Evict the oldest offline entries that nothing depends on. Busy ones
    // are skipped; a short scan bounds the work under the lock.
    auto pos = shard.offline.begin();
    for (int scanned = 0;
         shard.offline.size() > offlineCapacityPerShard_ && pos != shard.offline.end() && scanned < 16;
         ++scanned) {
        auto victim = shard.users.find(*pos);
        if (victim == shard.users.end()) {
            pos = shard.offline.erase(pos);
            continue;
        }
        const Entry& v = victim->second;
        if (v.changing || !v.waiters.empty() || v.state == State::Loading) {
            ++pos;
            continue;
        }
        pos = shard.offline.erase(pos);
        shard.users.erase(victim);
    }
}

Snapshot BlocklistCache::find(const std::string& bare) const {
    Shard& shard = shardFor(bare);
    std::shared_lock lock(shard.mutex);
    auto it = shard.users.find(bare);
    if (it == shard.users.end() || it->second.state != State::Ready) {
        return nullptr;
    }
    return it->second.items;
}

bool BlocklistCache::tracked(const std::string& bare) const {
    Shard& shard = shardFor(bare);
    std::shared_lock lock(shard.mutex);
    return shard.users.count(bare) != 0;
}

std::optional<uint64_t> BlocklistCache::sessionBound(const std::string& bare) {
    Shard& shard = shardFor(bare);
    std::unique_lock lock(shard.mutex);
    auto it = shard.users.try_emplace(bare).first;
    Entry& e = it->second;
    ++e.sessions;
    std::optional<uint64_t> load;
    if (e.state == State::Absent) {
        e.state = State::Loading;
        load = e.generation = nextGeneration_++;
    }
    settle(shard, it);
    return load;
}

void BlocklistCache::sessionClosed(const std::string& bare, const std::string& resource) {
    Shard& shard = shardFor(bare);
    std::unique_lock lock(shard.mutex);
    auto it = shard.users.find(bare);
    if (it == shard.users.end()) {
        return;
    }
    it->second.interested.erase(resource);
    if (it->second.sessions > 0) {
        --it->second.sessions;
    }
    settle(shard, it);
}

BlocklistCache::Wait BlocklistCache::whenLoaded(const std::string& bare, Waiter waiter) {
    Shard& shard = shardFor(bare);
    std::unique_lock lock(shard.mutex);
    auto it = shard.users.try_emplace(bare).first;
    Entry& e = it->second;
    Wait w;
    if (e.state == State::Ready) {
        w.ready = e.items;
        return w;
    }
    if (e.waiters.size() >= maxWaiters_) {
        w.refused = true;
        settle(shard, it);
        return w;
    }
    e.waiters.push_back(std::move(waiter));
    if (e.state != State::Loading) {
        e.state = State::Loading;
        w.load = e.generation = nextGeneration_++;
    }
    settle(shard, it);
    return w;
}

void BlocklistCache::finishLoad(const std::string& bare, std::optional<uint64_t> generation, Snapshot items,
                                bool ok) {
    std::vector<Waiter> waiters;
    {
        Shard& shard = shardFor(bare);
        std::unique_lock lock(shard.mutex);
        auto it = shard.users.find(bare);
        if (it == shard.users.end()) {
            return;
        }
        Entry& e = it->second;
        if (generation) {
            // A load: only the one still expected counts.
            if (e.state != State::Loading || e.generation != *generation) {
                return;
            }
        } else {
            e.generation = nextGeneration_++;  // a replacement outdates any load under way
        }
        e.state = ok ? State::Ready : State::Absent;
        e.items = ok ? items : nullptr;
        waiters.swap(e.waiters);
        settle(shard, it);
    }
    for (auto& w : waiters) {
        w(ok ? items : nullptr);
    }
}

void BlocklistCache::loaded(const std::string& bare, uint64_t generation, Snapshot items) {
    finishLoad(bare, generation, std::move(items), true);
}

void BlocklistCache::loadFailed(const std::string& bare, uint64_t generation) {
    finishLoad(bare, generation, nullptr, false);
}

void BlocklistCache::replace(const std::string& bare, Snapshot items) {
    finishLoad(bare, std::nullopt, std::move(items), true);
}

void BlocklistCache::startChange(const std::string& bare, std::function<void()> change) {
    {
        Shard& shard = shardFor(bare);
        std::unique_lock lock(shard.mutex);
        auto it = shard.users.try_emplace(bare).first;
        Entry& e = it->second;
        if (e.changing) {
            e.changes.push_back(std::move(change));
            return;
        }
        e.changing = true;
        settle(shard, it);
    }
    change();
}

void BlocklistCache::finishChange(const std::string& bare) {
    std::function<void()> next;
    {
        Shard& shard = shardFor(bare);
        std::unique_lock lock(shard.mutex);
        auto it = shard.users.find(bare);
        if (it == shard.users.end()) {
            return;
        }
        Entry& e = it->second;
        if (e.changes.empty()) {
            e.changing = false;
            settle(shard, it);
            return;
        }
        next = std::move(e.changes.front());
        e.changes.pop_front();
    }
    next();
}

void BlocklistCache::addInterested(const std::string& bare, const std::string& resource) {
    Shard& shard = shardFor(bare);
    std::unique_lock lock(shard.mutex);
    auto it = shard.users.find(bare);
    if (it != shard.users.end() && it->second.sessions > 0) {
        it->second.interested.insert(resource);
    }
}

std::vector<std::string> BlocklistCache::interested(const std::string& bare) const {
    Shard& shard = shardFor(bare);
    std::shared_lock lock(shard.mutex);
    auto it = shard.users.find(bare);
    if (it == shard.users.end()) {
        return {};
    }
    return {it->second.interested.begin(), it->second.interested.end()};
}

void BlocklistCache::forget(const std::string& bare) {
    std::vector<Waiter> waiters;
    {
        Shard& shard = shardFor(bare);
        std::unique_lock lock(shard.mutex);
        auto it = shard.users.find(bare);
        if (it == shard.users.end()) {
            return;
        }
        waiters.swap(it->second.waiters);
        if (it->second.inOffline) {
            shard.offline.erase(it->second.offlinePos);
        }
        shard.users.erase(it);
    }
    for (auto& w : waiters) {
        w(nullptr);
    }
}

size_t BlocklistCache::size() const {
    size_t n = 0;
    for (auto& s : shards_) {
        std::shared_lock lock(s.mutex);
        n += s.users.size();
    }
    return n;
}

}  // namespace xmppd::blocking
