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
};

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

AppendResult append(storage::Connection& c, const std::string& host, const std::string& user,
                    const std::string& sender, int64_t now, const std::string& stanza, int64_t maxMessages) {
    storage::Transaction tx(c);
    auto r = appendInTransaction(c, host, user, sender, now, stanza, maxMessages);
    tx.commit();
    return r;
}

AppendResult appendInTransaction(storage::Connection& c, const std::string& host, const std::string& user,
                                 const std::string& sender, int64_t now, const std::string& stanza,
                                 int64_t maxMessages) {
    auto exists = c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2", {host, user});
    if (exists.rows.empty()) {
        return AppendResult::NoSuchUser;
    }
    if (count(c, host, user) >= maxMessages) {
        return AppendResult::QuotaExceeded;
    }
    c.exec(
        "INSERT INTO offline_messages (host, username, sender, stored_at, stanza) VALUES ($1, $2, $3, $4, "
        "$5)",
        {host, user, sender, std::to_string(now), stanza});
    return AppendResult::Stored;
}

std::vector<StoredMessage> fetch(storage::Connection& c, const std::string& host, const std::string& user,
                                 int64_t limit, int64_t afterId) {
    auto r = c.exec(
        "SELECT id, sender, stored_at, stanza FROM offline_messages WHERE host = $1 AND username = $2 AND id "
        "> $3 "
        "ORDER BY id LIMIT $4",
        {host, user, std::to_string(afterId), std::to_string(limit)});
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
