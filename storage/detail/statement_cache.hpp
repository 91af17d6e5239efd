#pragma once

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace storage::detail {

// A least-recently-used map from SQL text to a prepared statement handle.
// Bounded because SQL built at run time (IN lists of varying length, say)
// would otherwise grow the cache, and the server-side statements with it,
// for as long as the connection lives. The cache never releases handles
// itself: every function that drops one returns it, so the backend decides
// how (sqlite3_finalize, DEALLOCATE) and when.
template <typename Handle>
class StatementCache {
  public:
    explicit StatementCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

    StatementCache(const StatementCache&) = delete;
    StatementCache& operator=(const StatementCache&) = delete;

    // Marks the entry as most recently used.
    Handle* find(std::string_view sql) {
        auto it = index_.find(sql);
        if (it == index_.end()) {
            return nullptr;
        }
        entries_.splice(entries_.begin(), entries_, it->second);
        return &it->second->second;
    }

    // The caller checked with find() that `sql` is absent. Returns the least
    // recently used handle if it had to make room for this one.
    std::optional<Handle> insert(std::string sql, Handle handle) {
        std::optional<Handle> evicted;
        if (entries_.size() >= capacity_) {
            evicted = std::move(entries_.back().second);
            index_.erase(std::string_view(entries_.back().first));
            entries_.pop_back();
        }
        entries_.emplace_front(std::move(sql), std::move(handle));
        // The key views the string inside the list node, which never moves.
        index_.emplace(std::string_view(entries_.front().first), entries_.begin());
        return evicted;
    }

    std::optional<Handle> erase(std::string_view sql) {
        auto it = index_.find(sql);
        if (it == index_.end()) {
            return std::nullopt;
        }
        auto entry = it->second;
        Handle handle = std::move(entry->second);
        index_.erase(it);
        entries_.erase(entry);
        return handle;
    }

    std::vector<Handle> clear() {
        std::vector<Handle> handles;
        handles.reserve(entries_.size());
        for (auto& entry : entries_) {
            handles.push_back(std::move(entry.second));
        }
        index_.clear();
        entries_.clear();
        return handles;
    }

    size_t size() const { return entries_.size(); }

  private:
    using Entries = std::list<std::pair<std::string, Handle>>;

    size_t capacity_;
    Entries entries_;
    std::unordered_map<std::string_view, typename Entries::iterator> index_;
};

}  // namespace storage::detail
