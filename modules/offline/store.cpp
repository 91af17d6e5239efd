#include "modules/offline/store.hpp"

namespace xmppd::offline::store {

namespace {

const storage::Migration kMigrations[] = {
    {"offline", 1,
     "CREATE TABLE offline_messages ("
     "id INTEGER PRIMARY KEY AUTOINCREMENT, "
     "host TEXT NOT NULL, username TEXT NOT NULL, sender TEXT NOT NULL, "
     "stored_at BIGINT NOT NULL, stanza TEXT NOT NULL);"
     "CREATE INDEX offline_messages_user ON offline_messages (host, username, id)",
     "CREATE TABLE offline_messages ("
     "id BIGSERIAL PRIMARY KEY, "
     "host TEXT COLLATE \"C\" NOT NULL, username TEXT COLLATE \"C\" NOT NULL, sender TEXT NOT NULL, "
     "stored_at BIGINT NOT NULL, stanza TEXT NOT NULL);"
     "CREATE INDEX offline_messages_user ON offline_messages (host, username, id)"},
    // A copy of a message still on its way to a device (hooks.hpp,
    // DeliveryPending): `held` is the boot id of the server that holds it;
    // this run's deliveries skip it, a run after a crash delivers it.
    {"offline", 2, "ALTER TABLE offline_messages ADD COLUMN held BIGINT",
     "ALTER TABLE offline_messages ADD COLUMN held BIGINT"},
};

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

AppendResult append(storage::Connection& c, const std::string& host, const std::string& user,
                    const std::string& sender, int64_t now, const std::string& stanza, int64_t maxMessages) {
    storage::Transaction tx(c);
    auto r = BatchAppender(c, maxMessages).append(host, user, sender, now, stanza);
    tx.commit();
    return r;
}

AppendResult BatchAppender::append(const std::string& host, const std::string& user,
                                   const std::string& sender, int64_t now, const std::string& stanza,
                                   int64_t held, int64_t* id) {
    auto key = std::make_pair(host, user);
    auto it = stored_.find(key);
    if (it == stored_.end()) {
        auto r = c_.exec(
            "SELECT (SELECT COUNT(*) FROM offline_messages WHERE host = $1 AND username = $2) FROM accounts "
            "WHERE host = $1 AND username = $2",
            {host, user});
        std::optional<int64_t> count;
        if (!r.rows.empty()) {
            count = r.rows.front().integer(0);
        }
        it = stored_.emplace(key, count).first;
    }
    if (!it->second) {
        return AppendResult::NoSuchUser;
    }
    if (*it->second >= maxMessages_) {
        return AppendResult::QuotaExceeded;
    }
    if (held != 0) {
        auto r = c_.exec(
            "INSERT INTO offline_messages (host, username, sender, stored_at, stanza, held) VALUES ($1, $2, "
            "$3, "
            "$4, $5, $6) RETURNING id",
            {host, user, sender, std::to_string(now), stanza, std::to_string(held)});
        if (id && !r.rows.empty()) {
            *id = r.rows.front().integer(0);
        }
    } else {
        c_.exec(
            "INSERT INTO offline_messages (host, username, sender, stored_at, stanza) VALUES ($1, $2, $3, "
            "$4, "
            "$5)",
            {host, user, sender, std::to_string(now), stanza});
    }
    ++*it->second;
    return AppendResult::Stored;
}

std::vector<StoredMessage> fetch(storage::Connection& c, const std::string& host, const std::string& user,
                                 int64_t limit, int64_t afterId, int64_t skipHeld) {
    auto r = c.exec(
        "SELECT id, sender, stored_at, stanza FROM offline_messages WHERE host = $1 AND username = $2 AND id "
        "> $3 AND (held IS NULL OR held <> $5) "
        "ORDER BY id LIMIT $4",
        {host, user, std::to_string(afterId), std::to_string(limit), std::to_string(skipHeld)});
    std::vector<StoredMessage> out;
    out.reserve(r.rows.size());
    for (const auto& row : r.rows) {
        out.push_back(StoredMessage{row.integer(0), row.text(1), row.integer(2), row.text(3)});
    }
    return out;
}

int64_t remove(storage::Connection& c, const std::string& host, const std::string& user,
               std::span<const int64_t> ids) {
    int64_t removed = 0;
    storage::Transaction tx(c);
    for (int64_t id : ids) {
        removed += c.exec("DELETE FROM offline_messages WHERE host = $1 AND username = $2 AND id = $3",
                          {host, user, std::to_string(id)})
                       .affected;
    }
    tx.commit();
    return removed;
}

void discardHeld(storage::Connection& c, int64_t id) {
    c.exec("DELETE FROM offline_messages WHERE id = $1", {std::to_string(id)});
}

void releaseHeld(storage::Connection& c, int64_t id) {
    c.exec("UPDATE offline_messages SET held = NULL WHERE id = $1", {std::to_string(id)});
}

int64_t count(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT COUNT(*) FROM offline_messages WHERE host = $1 AND username = $2", {host, user});
    return r.rows.empty() ? 0 : r.rows.front().integer(0);
}

int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user) {
    return c.exec("DELETE FROM offline_messages WHERE host = $1 AND username = $2", {host, user}).affected;
}

int64_t removeOlderThan(storage::Connection& c, int64_t cutoff) {
    return c.exec("DELETE FROM offline_messages WHERE stored_at < $1", {std::to_string(cutoff)}).affected;
}

}  // namespace xmppd::offline::store
