#pragma once

// The accounts table: one row per registered user of a virtual host, holding
// SCRAM credentials only (never a password). Every function takes a
// connection, so it runs inside a storage job or a caller's transaction.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace storage {

struct Account {
    std::string host;      // the virtual host, as configured (lower case)
    std::string username;  // nodeprep'd localpart
    std::string salt;      // base64
    int iterations = 0;
    std::string storedKeySha1;  // base64, SCRAM-SHA-1
    std::string serverKeySha1;
    std::string storedKeySha256;  // base64, SCRAM-SHA-256
    std::string serverKeySha256;
    int64_t createdAt = 0;  // seconds since the Unix epoch

    bool operator==(const Account&) const = default;
};

// A further credential of an account: one device's key (phone-number
// registration), derived with the account's salt and iteration count so
// that one SCRAM exchange can check them all (RFC 5802 §3 keys, base64).
struct AccountKey {
    std::string id;    // unique within the account, e.g. a device id
    std::string name;  // for people: "Pixel 8"
    std::string storedKeySha1;
    std::string serverKeySha1;
    std::string storedKeySha256;
    std::string serverKeySha256;
    int64_t createdAt = 0;
    int64_t lastUsed = 0;  // 0: never logged in with it

    bool operator==(const AccountKey&) const = default;
};

namespace accounts {

// Module "accounts". Version 1 creates accounts(host, username, salt,
// iterations, stored_key_sha1, server_key_sha1, stored_key_sha256,
// server_key_sha256, created_at, PRIMARY KEY (host, username)); version 2
// adds account_keys(host, username, key_id, name, the four keys,
// created_at, last_used, PRIMARY KEY (host, username, key_id)).
std::span<const Migration> migrations();

// False, changing nothing, if host/username already exists.
bool create(Connection& connection, const Account& account);

std::optional<Account> find(Connection& connection, std::string_view host, std::string_view username);

// Replaces salt, iterations and the four keys (a password change); host and
// username select the row, createdAt is left alone. False if no such user.
bool updateCredentials(Connection& connection, const Account& account);

// False if no such user. Its keys go with it.
bool remove(Connection& connection, std::string_view host, std::string_view username);

// Adds a key, or replaces the key with the same id.
void putKey(Connection& connection, std::string_view host, std::string_view username, const AccountKey& key);
// The account's keys, oldest first.
std::vector<AccountKey> keys(Connection& connection, std::string_view host, std::string_view username);
// Removes one key (or, without an id, all of them); returns how many went.
int64_t removeKeys(Connection& connection, std::string_view host, std::string_view username,
                   std::optional<std::string_view> id = std::nullopt);
void touchKey(Connection& connection, std::string_view host, std::string_view username, std::string_view id,
              int64_t when);

// All usernames of `host`, sorted by byte value in both backends.
std::vector<std::string> list(Connection& connection, std::string_view host);

int64_t count(Connection& connection, std::string_view host);

}  // namespace accounts
}  // namespace storage
