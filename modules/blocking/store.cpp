#include "modules/blocking/store.hpp"

namespace xmppd::blocking::store {

namespace {

const storage::Migration kMigrations[] = {
    {"blocking", 1,
     "CREATE TABLE blocklist ("
     "host TEXT NOT NULL, username TEXT NOT NULL, jid TEXT NOT NULL, "
     "PRIMARY KEY (host, username, jid))",
     "CREATE TABLE blocklist ("
     "host TEXT COLLATE \"C\" NOT NULL, username TEXT COLLATE \"C\" NOT NULL, jid TEXT COLLATE \"C\" NOT "
     "NULL, "
     "PRIMARY KEY (host, username, jid))"},
};

// Checks the account and, on PostgreSQL, locks its row so that concurrent
// changes of one user's list run one after the other.
bool lockAccount(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.dialect() == storage::Dialect::Postgres
                 ? c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2 FOR UPDATE", {host, user})
                 : c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2", {host, user});
    return !r.rows.empty();
}

int64_t count(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT COUNT(*) FROM blocklist WHERE host = $1 AND username = $2", {host, user});
    return r.rows.empty() ? 0 : r.rows.front().integer(0);
}

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

std::vector<std::string> list(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT jid FROM blocklist WHERE host = $1 AND username = $2 ORDER BY jid", {host, user});
    std::vector<std::string> out;
    out.reserve(r.rows.size());
    for (const auto& row : r.rows) {
        out.push_back(row.text(0));
    }
    return out;
}

ChangeResult block(storage::Connection& c, const std::string& host, const std::string& user,
                   const std::vector<std::string>& jids, int64_t maxItems) {
    storage::Transaction tx(c);
    if (!lockAccount(c, host, user)) {
        return ChangeResult::NoSuchUser;
    }
    for (const auto& jid : jids) {
        c.exec(
            "INSERT INTO blocklist (host, username, jid) VALUES ($1, $2, $3) "
            "ON CONFLICT (host, username, jid) DO NOTHING",
            {host, user, jid});
    }
    if (count(c, host, user) > maxItems) {
        return ChangeResult::TooMany;  // rolled back by tx
    }
    tx.commit();
    return ChangeResult::Done;
}

ChangeResult unblock(storage::Connection& c, const std::string& host, const std::string& user,
                     const std::vector<std::string>& jids) {
    storage::Transaction tx(c);
    if (!lockAccount(c, host, user)) {
        return ChangeResult::NoSuchUser;
    }
    if (jids.empty()) {
        c.exec("DELETE FROM blocklist WHERE host = $1 AND username = $2", {host, user});
    }
    for (const auto& jid : jids) {
        c.exec("DELETE FROM blocklist WHERE host = $1 AND username = $2 AND jid = $3", {host, user, jid});
    }
    tx.commit();
    return ChangeResult::Done;
}

int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user) {
    return c.exec("DELETE FROM blocklist WHERE host = $1 AND username = $2", {host, user}).affected;
}

}  // namespace xmppd::blocking::store
