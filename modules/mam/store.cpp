#include "modules/mam/store.hpp"

#include <algorithm>

#include "modules/mam/ids.hpp"

namespace xmppd::mam {

namespace {

// The column types and the collation differ; the shape is the same.
#define MAM_SCHEMA(TEXT_KEY)                                                             \
    "CREATE TABLE mam_messages ("                                                        \
    "host " TEXT_KEY " NOT NULL, username " TEXT_KEY                                     \
    " NOT NULL, id BIGINT NOT NULL, "                                                    \
    "timestamp BIGINT NOT NULL, with_jid " TEXT_KEY                                      \
    " NOT NULL, with_resource TEXT NOT NULL, "                                           \
    "direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), stanza TEXT NOT NULL, " \
    "PRIMARY KEY (host, username, id));"                                                 \
    "CREATE INDEX mam_messages_with ON mam_messages (host, username, with_jid, id);"     \
    "CREATE INDEX mam_messages_timestamp ON mam_messages (timestamp);"                   \
    "CREATE TABLE mam_prefs ("                                                           \
    "host " TEXT_KEY " NOT NULL, username " TEXT_KEY                                     \
    " NOT NULL, "                                                                        \
    "default_mode TEXT NOT NULL CHECK (default_mode IN ('always', 'never', 'roster')), " \
    "PRIMARY KEY (host, username));"                                                     \
    "CREATE TABLE mam_prefs_jids ("                                                      \
    "host " TEXT_KEY " NOT NULL, username " TEXT_KEY                                     \
    " NOT NULL, "                                                                        \
    "list TEXT NOT NULL CHECK (list IN ('always', 'never')), jid " TEXT_KEY              \
    " NOT NULL, "                                                                        \
    "PRIMARY KEY (host, username, list, jid))"

const storage::Migration kMigrations[] = {
    {"mam", 1, MAM_SCHEMA("TEXT"), MAM_SCHEMA("TEXT COLLATE \"C\"")},
};

#undef MAM_SCHEMA

constexpr const char* kColumns = "id, timestamp, with_jid, with_resource, direction, stanza";

std::string s(int64_t v) {
    return std::to_string(v);
}

ArchivedMessage fromRow(const storage::Row& row) {
    return ArchivedMessage{row.integer(0),
                           row.integer(1),
                           row.text(2),
                           row.text(3),
                           row.text(4) == "out" ? Direction::Out : Direction::In,
                           row.text(5)};
}

std::string userKey(const std::string& host, const std::string& user) {
    return user + "@" + host;
}

bool userExists(storage::Connection& c, const std::string& host, const std::string& user) {
    return !c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2", {host, user}).rows.empty();
}

// Keeps the newest `keep` messages of a user; returns how many went.
int64_t trimTo(storage::Connection& c, const std::string& host, const std::string& user, int64_t total,
               int64_t keep) {
    if (total <= keep) {
        return 0;
    }
    auto r =
        c.exec("SELECT id FROM mam_messages WHERE host = $1 AND username = $2 ORDER BY id LIMIT 1 OFFSET $3",
               {host, user, s(total - keep - 1)});
    if (r.rows.empty()) {
        return 0;
    }
    return c
        .exec("DELETE FROM mam_messages WHERE host = $1 AND username = $2 AND id <= $3",
              {host, user, s(r.rows.front().integer(0))})
        .affected;
}

// The id range a query's form selects: [lo, hi).
std::pair<int64_t, int64_t> formRange(const Query& q) {
    int64_t lo = 1;
    int64_t hi = INT64_MAX;
    if (q.startMs) {
        lo = std::max(lo, firstIdOfMillis(*q.startMs));
    }
    if (q.endMs) {
        hi = std::min(hi, *q.endMs >= kMaxIdMillis ? INT64_MAX : firstIdOfMillis(*q.endMs + 1));
    }
    if (q.afterId) {
        lo = std::max(lo, *q.afterId == INT64_MAX ? INT64_MAX : *q.afterId + 1);
    }
    if (q.beforeId) {
        hi = std::min(hi, *q.beforeId);
    }
    return {lo, hi};
}

// "host = $1 AND username = $2 AND id >= $3 AND id < $4" plus the 'with'
// filter; the parameters in `params`.
std::string where(const Query& q, int64_t lo, int64_t hi, std::vector<storage::Value>& params) {
    std::string sql = " WHERE host = $1 AND username = $2 AND id >= $3 AND id < $4";
    params = {q.host, q.user, s(lo), s(hi)};
    if (!q.withJid.empty()) {
        sql += " AND with_jid = $5";
        params.emplace_back(q.withJid);
        if (!q.withResource.empty()) {
            sql += " AND with_resource = $6";
            params.emplace_back(q.withResource);
        }
    }
    return sql;
}

// The page of an 'ids' query, whose result set is small: read the named
// messages, filter and page in memory.
Page idsPage(storage::Connection& c, const Query& q, int64_t lo, int64_t hi) {
    std::vector<ArchivedMessage> set;
    std::string sql = std::string("SELECT ") + kColumns +
                      " FROM mam_messages WHERE host = $1 AND username = $2 AND id = $3";
    for (int64_t id : q.ids) {
        auto r = c.exec(sql, {q.host, q.user, s(id)});
        for (const auto& row : r.rows) {
            auto m = fromRow(row);
            bool withOk = q.withJid.empty() || (m.withJid == q.withJid &&
                                                (q.withResource.empty() || m.withResource == q.withResource));
            if (m.id >= lo && m.id < hi && withOk) {
                set.push_back(std::move(m));
            }
        }
    }
    std::sort(set.begin(), set.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    set.erase(std::unique(set.begin(), set.end(), [](const auto& a, const auto& b) { return a.id == b.id; }),
              set.end());
    Page page;
    page.count = static_cast<int64_t>(set.size());
    auto first = set.begin();
    auto last = set.end();
    if (q.rsmAfter) {
        first = std::upper_bound(set.begin(), set.end(), *q.rsmAfter,
                                 [](int64_t id, const ArchivedMessage& m) { return id < m.id; });
    }
    if (q.rsmBefore) {
        last = std::lower_bound(set.begin(), set.end(), *q.rsmBefore,
                                [](const ArchivedMessage& m, int64_t id) { return m.id < id; });
    }
    if (first > last) {
        first = last;
    }
    auto n = last - first;
    page.complete = n <= q.max;
    if (q.rsmBefore || q.lastPage) {
        first = std::max(first, last - std::min<ptrdiff_t>(n, q.max));
    } else {
        last = first + std::min<ptrdiff_t>(n, q.max);
    }
    page.items.assign(first, last);
    return page;
}

}  // namespace

std::optional<int64_t> ArchiveCounts::find(const std::string& key) const {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    return it == counts_.end() ? std::nullopt : std::optional<int64_t>(it->second);
}

void ArchiveCounts::set(const std::string& key, int64_t count) {
    std::lock_guard lock(mutex_);
    if (counts_.size() >= maxEntries_ && !counts_.contains(key)) {
        counts_.clear();  // crude but bounded: the next batch of each user recounts
    }
    counts_[key] = count;
}

void ArchiveCounts::clear() {
    std::lock_guard lock(mutex_);
    counts_.clear();
}

namespace store {

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

std::vector<AppendResult> append(storage::Connection& c, std::span<const NewMessage> batch,
                                 int64_t maxPerUser, ArchiveCounts* counts) {
    std::vector<AppendResult> results;
    results.reserve(batch.size());
    // Per user of the batch: exists, messages inserted.
    std::map<std::pair<std::string, std::string>, std::pair<bool, int64_t>> users;
    std::vector<std::pair<std::string, int64_t>> newCounts;
    storage::Transaction tx(c);
    for (const auto& m : batch) {
        auto key = std::make_pair(m.host, m.user);
        auto it = users.find(key);
        if (it == users.end()) {
            it = users.emplace(key, std::make_pair(userExists(c, m.host, m.user), int64_t{0})).first;
        }
        if (!it->second.first) {
            results.push_back(AppendResult::NoSuchUser);
            continue;
        }
        c.exec(
            "INSERT INTO mam_messages (host, username, id, timestamp, with_jid, with_resource, direction, "
            "stanza) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            {m.host, m.user, s(m.id), s(idMillis(m.id)), m.withJid, m.withResource,
             std::string(m.direction == Direction::Out ? "out" : "in"), m.stanza});
        ++it->second.second;
        results.push_back(AppendResult::Stored);
    }
    if (maxPerUser > 0) {
        for (const auto& [key, state] : users) {
            if (!state.first) {
                continue;
            }
            const auto& [host, user] = key;
            std::string k = userKey(host, user);
            auto known = counts ? counts->find(k) : std::nullopt;
            int64_t total = known ? *known + state.second : count(c, host, user);
            if (total > maxPerUser && known) {
                total = count(c, host, user);  // the cached count may be stale: trim by the truth
            }
            total -= trimTo(c, host, user, total, maxPerUser);
            newCounts.emplace_back(std::move(k), total);
        }
    }
    tx.commit();
    if (counts) {
        for (auto& [k, n] : newCounts) {
            counts->set(k, n);
        }
    }
    return results;
}

std::optional<Page> query(storage::Connection& c, const Query& q) {
    for (auto id : {q.afterId, q.beforeId, q.rsmAfter, q.rsmBefore}) {
        if (id && !contains(c, q.host, q.user, *id)) {
            return std::nullopt;
        }
    }
    for (int64_t id : q.ids) {
        if (!contains(c, q.host, q.user, id)) {
            return std::nullopt;
        }
    }
    auto [lo, hi] = formRange(q);
    if (!q.ids.empty()) {
        return idsPage(c, q, lo, hi);
    }
    Page page;
    std::vector<storage::Value> params;
    std::string filter = where(q, lo, hi, params);
    auto r = c.exec("SELECT COUNT(*) FROM mam_messages" + filter, params);
    page.count = r.rows.empty() ? 0 : r.rows.front().integer(0);

    bool backward = q.rsmBefore || q.lastPage;
    int64_t pageLo = lo;
    int64_t pageHi = hi;
    if (q.rsmAfter) {
        pageLo = std::max(pageLo, *q.rsmAfter + 1);
    }
    if (q.rsmBefore) {
        pageHi = std::min(pageHi, *q.rsmBefore);
    }
    filter = where(q, pageLo, pageHi, params);
    params.emplace_back(s(q.max + 1));
    std::string sql = std::string("SELECT ") + kColumns + " FROM mam_messages" + filter + " ORDER BY id " +
                      (backward ? "DESC" : "ASC") + " LIMIT $" + s(static_cast<int64_t>(params.size()));
    r = c.exec(sql, params);
    page.complete = static_cast<int64_t>(r.rows.size()) <= q.max;
    for (size_t i = 0; i < r.rows.size() && static_cast<int64_t>(i) < q.max; ++i) {
        page.items.push_back(fromRow(r.rows[i]));
    }
    if (backward) {
        std::reverse(page.items.begin(), page.items.end());
    }
    return page;
}

bool contains(storage::Connection& c, const std::string& host, const std::string& user, int64_t id) {
    return !c.exec("SELECT 1 FROM mam_messages WHERE host = $1 AND username = $2 AND id = $3",
                   {host, user, s(id)})
                .rows.empty();
}

int64_t count(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT COUNT(*) FROM mam_messages WHERE host = $1 AND username = $2", {host, user});
    return r.rows.empty() ? 0 : r.rows.front().integer(0);
}

std::optional<std::pair<ArchivedMessage, ArchivedMessage>> bounds(storage::Connection& c,
                                                                  const std::string& host,
                                                                  const std::string& user) {
    std::string base =
        std::string("SELECT ") + kColumns + " FROM mam_messages WHERE host = $1 AND username = $2";
    auto first = c.exec(base + " ORDER BY id ASC LIMIT 1", {host, user});
    auto last = c.exec(base + " ORDER BY id DESC LIMIT 1", {host, user});
    if (first.rows.empty() || last.rows.empty()) {
        return std::nullopt;
    }
    return std::make_pair(fromRow(first.rows.front()), fromRow(last.rows.front()));
}

int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user) {
    storage::Transaction tx(c);
    int64_t n = c.exec("DELETE FROM mam_messages WHERE host = $1 AND username = $2", {host, user}).affected;
    c.exec("DELETE FROM mam_prefs WHERE host = $1 AND username = $2", {host, user});
    c.exec("DELETE FROM mam_prefs_jids WHERE host = $1 AND username = $2", {host, user});
    tx.commit();
    return n;
}

int64_t removeOlderThan(storage::Connection& c, int64_t cutoffMs) {
    return c.exec("DELETE FROM mam_messages WHERE timestamp < $1", {s(cutoffMs)}).affected;
}

std::optional<Prefs> loadPrefs(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT default_mode FROM mam_prefs WHERE host = $1 AND username = $2", {host, user});
    if (r.rows.empty()) {
        return std::nullopt;
    }
    Prefs prefs;
    prefs.mode = parseDefaultMode(r.rows.front().text(0)).value_or(DefaultMode::Always);
    auto jids =
        c.exec("SELECT list, jid FROM mam_prefs_jids WHERE host = $1 AND username = $2 ORDER BY list, jid",
               {host, user});
    for (const auto& row : jids.rows) {
        (row.text(0) == "never" ? prefs.never : prefs.always).push_back(row.text(1));
    }
    std::sort(prefs.always.begin(), prefs.always.end());
    std::sort(prefs.never.begin(), prefs.never.end());
    return prefs;
}

std::unordered_map<std::string, Prefs> loadAllPrefs(storage::Connection& c) {
    std::unordered_map<std::string, Prefs> out;
    for (const auto& row : c.exec("SELECT host, username, default_mode FROM mam_prefs").rows) {
        out[userKey(row.text(0), row.text(1))].mode =
            parseDefaultMode(row.text(2)).value_or(DefaultMode::Always);
    }
    for (const auto& row :
         c.exec("SELECT host, username, list, jid FROM mam_prefs_jids ORDER BY host, username, list, jid")
             .rows) {
        auto it = out.find(userKey(row.text(0), row.text(1)));
        if (it != out.end()) {
            (row.text(2) == "never" ? it->second.never : it->second.always).push_back(row.text(3));
        }
    }
    // The database's order is its collation's; the lists must be sorted by
    // byte value for shouldArchive().
    for (auto& [_, prefs] : out) {
        std::sort(prefs.always.begin(), prefs.always.end());
        std::sort(prefs.never.begin(), prefs.never.end());
    }
    return out;
}

void savePrefs(storage::Connection& c, const std::string& host, const std::string& user, const Prefs& prefs) {
    storage::Transaction tx(c);
    c.exec("DELETE FROM mam_prefs WHERE host = $1 AND username = $2", {host, user});
    c.exec("DELETE FROM mam_prefs_jids WHERE host = $1 AND username = $2", {host, user});
    c.exec("INSERT INTO mam_prefs (host, username, default_mode) VALUES ($1, $2, $3)",
           {host, user, std::string(toString(prefs.mode))});
    for (const auto* list : {&prefs.always, &prefs.never}) {
        std::string name = list == &prefs.always ? "always" : "never";
        for (const auto& jid : *list) {
            c.exec("INSERT INTO mam_prefs_jids (host, username, list, jid) VALUES ($1, $2, $3, $4)",
                   {host, user, name, jid});
        }
    }
    tx.commit();
}

}  // namespace store
}  // namespace xmppd::mam
