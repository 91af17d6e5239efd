#include "storage/accounts.hpp"

namespace storage::accounts {
namespace {

// Postgres compares text by the database's locale, so a server on an
// en_US database would sort "Bob" after "alice" where SQLite sorts it before.
// COLLATE "C" makes the key columns compare by bytes like SQLite, and lets
// the primary key index serve the ORDER BY of list().
const Migration kMigrations[] = {
    {
        "accounts",
        1,
        "CREATE TABLE accounts ("
        "host TEXT NOT NULL, "
        "username TEXT NOT NULL, "
        "salt TEXT NOT NULL, "
        "iterations INTEGER NOT NULL, "
        "stored_key_sha1 TEXT NOT NULL, "
        "server_key_sha1 TEXT NOT NULL, "
        "stored_key_sha256 TEXT NOT NULL, "
        "server_key_sha256 TEXT NOT NULL, "
        "created_at BIGINT NOT NULL, "
        "PRIMARY KEY (host, username))",
        "CREATE TABLE accounts ("
        "host TEXT COLLATE \"C\" NOT NULL, "
        "username TEXT COLLATE \"C\" NOT NULL, "
        "salt TEXT NOT NULL, "
        "iterations INTEGER NOT NULL, "
        "stored_key_sha1 TEXT NOT NULL, "
        "server_key_sha1 TEXT NOT NULL, "
        "stored_key_sha256 TEXT NOT NULL, "
        "server_key_sha256 TEXT NOT NULL, "
        "created_at BIGINT NOT NULL, "
        "PRIMARY KEY (host, username))",
    },
    {
        "accounts",
        2,
        "CREATE TABLE account_keys ("
        "host TEXT NOT NULL, "
        "username TEXT NOT NULL, "
        "key_id TEXT NOT NULL, "
        "name TEXT NOT NULL, "
        "stored_key_sha1 TEXT NOT NULL, "
        "server_key_sha1 TEXT NOT NULL, "
        "stored_key_sha256 TEXT NOT NULL, "
        "server_key_sha256 TEXT NOT NULL, "
        "created_at BIGINT NOT NULL, "
        "last_used BIGINT NOT NULL, "
        "PRIMARY KEY (host, username, key_id))",
        "CREATE TABLE account_keys ("
        "host TEXT COLLATE \"C\" NOT NULL, "
        "username TEXT COLLATE \"C\" NOT NULL, "
        "key_id TEXT COLLATE \"C\" NOT NULL, "
        "name TEXT NOT NULL, "
        "stored_key_sha1 TEXT NOT NULL, "
        "server_key_sha1 TEXT NOT NULL, "
        "stored_key_sha256 TEXT NOT NULL, "
        "server_key_sha256 TEXT NOT NULL, "
        "created_at BIGINT NOT NULL, "
        "last_used BIGINT NOT NULL, "
        "PRIMARY KEY (host, username, key_id))",
    },
};

Account fromRow(const Row& row) {
    Account account;
    account.host = row.text(0);
    account.username = row.text(1);
    account.salt = row.text(2);
    account.iterations = static_cast<int>(row.integer(3));
    account.storedKeySha1 = row.text(4);
    account.serverKeySha1 = row.text(5);
    account.storedKeySha256 = row.text(6);
    account.serverKeySha256 = row.text(7);
    account.createdAt = row.integer(8);
    return account;
}

}  // namespace

std::span<const Migration> migrations() {
    return kMigrations;
}

bool create(Connection& connection, const Account& account) {
    // ON CONFLICT instead of catching a unique violation: inside a caller's
    // transaction, a violation would abort the whole transaction on Postgres.
    Result result = connection.exec(
        "INSERT INTO accounts (host, username, salt, iterations, stored_key_sha1, server_key_sha1, "
        "stored_key_sha256, server_key_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
        "ON CONFLICT (host, username) DO NOTHING",
        {account.host, account.username, account.salt, std::to_string(account.iterations),
         account.storedKeySha1, account.serverKeySha1, account.storedKeySha256, account.serverKeySha256,
         std::to_string(account.createdAt)});
    return result.affected == 1;
}

std::optional<Account> find(Connection& connection, std::string_view host, std::string_view username) {
    Result result = connection.exec(
        "SELECT host, username, salt, iterations, stored_key_sha1, server_key_sha1, stored_key_sha256, "
        "server_key_sha256, created_at FROM accounts WHERE host = $1 AND username = $2",
        {std::string(host), std::string(username)});
    if (result.rows.empty()) {
        return std::nullopt;
    }
    return fromRow(result.rows.front());
}

bool updateCredentials(Connection& connection, const Account& account) {
    Result result = connection.exec(
        "UPDATE accounts SET salt = $3, iterations = $4, stored_key_sha1 = $5, server_key_sha1 = $6, "
        "stored_key_sha256 = $7, server_key_sha256 = $8 WHERE host = $1 AND username = $2",
        {account.host, account.username, account.salt, std::to_string(account.iterations),
         account.storedKeySha1, account.serverKeySha1, account.storedKeySha256, account.serverKeySha256});
    return result.affected > 0;
}

bool remove(Connection& connection, std::string_view host, std::string_view username) {
    removeKeys(connection, host, username);
    Result result = connection.exec("DELETE FROM accounts WHERE host = $1 AND username = $2",
                                    {std::string(host), std::string(username)});
    return result.affected > 0;
}

void putKey(Connection& connection, std::string_view host, std::string_view username, const AccountKey& key) {
    connection.exec(
        "INSERT INTO account_keys (host, username, key_id, name, stored_key_sha1, server_key_sha1, "
        "stored_key_sha256, server_key_sha256, created_at, last_used) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
        "ON CONFLICT (host, username, key_id) DO UPDATE SET name = excluded.name, "
        "stored_key_sha1 = excluded.stored_key_sha1, server_key_sha1 = excluded.server_key_sha1, "
        "stored_key_sha256 = excluded.stored_key_sha256, server_key_sha256 = excluded.server_key_sha256, "
        "created_at = excluded.created_at, last_used = excluded.last_used",
        {std::string(host), std::string(username), key.id, key.name, key.storedKeySha1, key.serverKeySha1,
         key.storedKeySha256, key.serverKeySha256, std::to_string(key.createdAt),
         std::to_string(key.lastUsed)});
}

std::vector<AccountKey> keys(Connection& connection, std::string_view host, std::string_view username) {
    Result result = connection.exec(
        "SELECT key_id, name, stored_key_sha1, server_key_sha1, stored_key_sha256, server_key_sha256, "
        "created_at, last_used FROM account_keys WHERE host = $1 AND username = $2 ORDER BY created_at, "
        "key_id",
        {std::string(host), std::string(username)});
    std::vector<AccountKey> out;
    out.reserve(result.rows.size());
    for (const Row& row : result.rows) {
        AccountKey k;
        k.id = row.text(0);
        k.name = row.text(1);
        k.storedKeySha1 = row.text(2);
        k.serverKeySha1 = row.text(3);
        k.storedKeySha256 = row.text(4);
        k.serverKeySha256 = row.text(5);
        k.createdAt = row.integer(6);
        k.lastUsed = row.integer(7);
        out.push_back(std::move(k));
    }
    return out;
}

int64_t removeKeys(Connection& connection, std::string_view host, std::string_view username,
                   std::optional<std::string_view> id) {
    Result result =
        id ? connection.exec("DELETE FROM account_keys WHERE host = $1 AND username = $2 AND key_id = $3",
                             {std::string(host), std::string(username), std::string(*id)})
           : connection.exec("DELETE FROM account_keys WHERE host = $1 AND username = $2",
                             {std::string(host), std::string(username)});
    return result.affected;
}

void touchKey(Connection& connection, std::string_view host, std::string_view username, std::string_view id,
              int64_t when) {
    connection.exec(
        "UPDATE account_keys SET last_used = $4 WHERE host = $1 AND username = $2 AND key_id = $3",
        {std::string(host), std::string(username), std::string(id), std::to_string(when)});
}

std::vector<std::string> list(Connection& connection, std::string_view host) {
    Result result = connection.exec("SELECT username FROM accounts WHERE host = $1 ORDER BY username",
                                    {std::string(host)});
    std::vector<std::string> usernames;
    usernames.reserve(result.rows.size());
    for (const Row& row : result.rows) {
        usernames.push_back(row.text(0));
    }
    return usernames;
}

int64_t count(Connection& connection, std::string_view host) {
    Result result = connection.exec("SELECT COUNT(*) FROM accounts WHERE host = $1", {std::string(host)});
    return result.rows.at(0).integer(0);
}

}  // namespace storage::accounts
