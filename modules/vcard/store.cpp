#include "modules/vcard/store.hpp"

namespace xmppd::vcard::store {

namespace {

const storage::Migration kMigrations[] = {
    {"vcard", 1,
     "CREATE TABLE vcards ("
     "host TEXT NOT NULL, username TEXT NOT NULL, vcard TEXT NOT NULL, photo_hash TEXT NOT NULL, "
     "PRIMARY KEY (host, username))",
     "CREATE TABLE vcards ("
     "host TEXT COLLATE \"C\" NOT NULL, username TEXT COLLATE \"C\" NOT NULL, vcard TEXT NOT NULL, "
     "photo_hash TEXT NOT NULL, PRIMARY KEY (host, username))"},
};

bool accountExists(storage::Connection& c, const std::string& host, const std::string& user) {
    return !c.exec("SELECT 1 FROM accounts WHERE host = $1 AND username = $2", {host, user}).rows.empty();
}

Lookup read(storage::Connection& c, const std::string& host, const std::string& user, bool lock) {
    Lookup out;
    out.account = accountExists(c, host, user);
    if (!out.account) {
        return out;
    }
    auto r =
        lock && c.dialect() == storage::Dialect::Postgres
            ? c.exec("SELECT vcard, photo_hash FROM vcards WHERE host = $1 AND username = $2 FOR UPDATE",
                     {host, user})
            : c.exec("SELECT vcard, photo_hash FROM vcards WHERE host = $1 AND username = $2", {host, user});
    if (!r.rows.empty()) {
        out.vcard = Stored{r.rows.front().text(0), r.rows.front().text(1)};
    }
    return out;
}

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

Lookup get(storage::Connection& c, const std::string& host, const std::string& user) {
    return read(c, host, user, false);
}

Lookup getForUpdate(storage::Connection& c, const std::string& host, const std::string& user) {
    return read(c, host, user, true);
}

std::optional<std::string> photoHash(storage::Connection& c, const std::string& host,
                                     const std::string& user) {
    auto r = c.exec("SELECT photo_hash FROM vcards WHERE host = $1 AND username = $2", {host, user});
    if (r.rows.empty()) {
        return std::nullopt;
    }
    return r.rows.front().text(0);
}

void setInTransaction(storage::Connection& c, const std::string& host, const std::string& user,
                      const Stored& vcard) {
    if (vcard.xml.empty()) {
        c.exec("DELETE FROM vcards WHERE host = $1 AND username = $2", {host, user});
        return;
    }
    c.exec(
        "INSERT INTO vcards (host, username, vcard, photo_hash) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (host, username) DO UPDATE SET vcard = excluded.vcard, photo_hash = excluded.photo_hash",
        {host, user, vcard.xml, vcard.photoHash});
}

bool set(storage::Connection& c, const std::string& host, const std::string& user, const Stored& vcard) {
    storage::Transaction tx(c);
    if (!accountExists(c, host, user)) {
        return false;
    }
    setInTransaction(c, host, user, vcard);
    tx.commit();
    return true;
}

int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user) {
    return c.exec("DELETE FROM vcards WHERE host = $1 AND username = $2", {host, user}).affected;
}

}  // namespace xmppd::vcard::store
