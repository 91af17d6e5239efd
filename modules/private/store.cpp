#include "modules/private/store.hpp"

namespace xmppd::privatexml::store {

namespace {

const storage::Migration kMigrations[] = {
    {"private", 1,
     "CREATE TABLE private_storage ("
     "host TEXT NOT NULL, username TEXT NOT NULL, namespace TEXT NOT NULL, data TEXT NOT NULL, "
     "PRIMARY KEY (host, username, namespace))",
     "CREATE TABLE private_storage ("
     "host TEXT COLLATE \"C\" NOT NULL, username TEXT COLLATE \"C\" NOT NULL, "
     "namespace TEXT COLLATE \"C\" NOT NULL, data TEXT NOT NULL, "
     "PRIMARY KEY (host, username, namespace))"},
};

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

std::optional<std::string> get(storage::Connection& c, const std::string& host, const std::string& user,
                               const std::string& ns) {
    auto r = c.exec("SELECT data FROM private_storage WHERE host = $1 AND username = $2 AND namespace = $3",
                    {host, user, ns});
    if (r.rows.empty()) {
        return std::nullopt;
    }
    return r.rows.front().text(0);
}

SetResult set(storage::Connection& c, const std::string& host, const std::string& user, const std::string& ns,
              const std::string& xml, int64_t maxNamespaces) {
    storage::Transaction tx(c);
    if (c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2", {host, user}).rows.empty()) {
        return SetResult::NoSuchUser;
    }
    bool exists =
        !c.exec("SELECT 1 FROM private_storage WHERE host = $1 AND username = $2 AND namespace = $3",
                {host, user, ns})
             .rows.empty();
    if (!exists && count(c, host, user) >= maxNamespaces) {
        return SetResult::TooMany;
    }
    c.exec(
        "INSERT INTO private_storage (host, username, namespace, data) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (host, username, namespace) DO UPDATE SET data = excluded.data",
        {host, user, ns, xml});
    tx.commit();
    return SetResult::Stored;
}

int64_t count(storage::Connection& c, const std::string& host, const std::string& user) {
    auto r = c.exec("SELECT COUNT(*) FROM private_storage WHERE host = $1 AND username = $2", {host, user});
    return r.rows.empty() ? 0 : r.rows.front().integer(0);
}

int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user) {
    return c.exec("DELETE FROM private_storage WHERE host = $1 AND username = $2", {host, user}).affected;
}

}  // namespace xmppd::privatexml::store
