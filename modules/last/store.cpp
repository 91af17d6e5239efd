#include "modules/last/store.hpp"

namespace xmppd::last::store {

namespace {

const storage::Migration kMigrations[] = {
    {"last", 1,
     "CREATE TABLE last_activity ("
     "host TEXT NOT NULL, username TEXT NOT NULL, logout_at BIGINT NOT NULL, status TEXT NOT NULL, "
     "PRIMARY KEY (host, username))",
     "CREATE TABLE last_activity ("
     "host TEXT COLLATE \"C\" NOT NULL, username TEXT COLLATE \"C\" NOT NULL, logout_at BIGINT NOT NULL, "
     "status TEXT NOT NULL, PRIMARY KEY (host, username))"},
};

bool accountExists(storage::Connection& c, const std::string& host, const std::string& user) {
    return !c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2", {host, user}).rows.empty();
}

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

Lookup get(storage::Connection& c, const std::string& host, const std::string& user) {
    Lookup out;
    out.account = accountExists(c, host, user);
    if (!out.account) {
        return out;
    }
    auto r =
        c.exec("SELECT logout_at, status FROM last_activity WHERE host = $1 AND username = $2", {host, user});
    if (!r.rows.empty()) {
        out.seen = LastSeen{r.rows.front().integer(0), r.rows.front().text(1)};
    }
    return out;
}

bool set(storage::Connection& c, const std::string& host, const std::string& user, const LastSeen& seen) {
    storage::Transaction tx(c);
    if (!accountExists(c, host, user)) {
        return false;
    }
    c.exec(
        "INSERT INTO last_activity (host, username, logout_at, status) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (host, username) DO UPDATE SET logout_at = excluded.logout_at, status = excluded.status",
        {host, user, std::to_string(seen.logoutAt), seen.status});
    tx.commit();
    return true;
}

int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user) {
    return c.exec("DELETE FROM last_activity WHERE host = $1 AND username = $2", {host, user}).affected;
}

}  // namespace xmppd::last::store
