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
    Result result = connection.exec("DELETE FROM accounts WHERE host = $1 AND username = $2",
                                    {std::string(host), std::string(username)});
    return result.affected > 0;
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
