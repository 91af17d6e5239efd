#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::vcard {

struct Stored {
    std::string xml;        // the <vCard xmlns='vcard-temp'> element, serialized
    std::string photoHash;  // XEP-0153: hex SHA-1 of the PHOTO's BINVAL, "" without one
};

struct Lookup {
    bool account = false;         // the account exists
    std::optional<Stored> vcard;  // empty when the user has none
};

// XEP-0054 vCards: table `vcards`, one row per (host, username). Written
// once against storage::Connection for SQLite and PostgreSQL.
namespace store {
std::span<const storage::Migration> migrations();
Lookup get(storage::Connection& c, const std::string& host, const std::string& user);
// Only the avatar hash, for presence (nullopt: no vCard).
std::optional<std::string> photoHash(storage::Connection& c, const std::string& host,
                                     const std::string& user);
// Replaces the vCard in one transaction (an empty xml removes it); false,
// with nothing written, when the account does not exist.
bool set(storage::Connection& c, const std::string& host, const std::string& user, const Stored& vcard);
// The same pieces inside a transaction the caller owns (read-modify-write by
// the admin commands); getForUpdate locks the row on PostgreSQL.
Lookup getForUpdate(storage::Connection& c, const std::string& host, const std::string& user);
void setInTransaction(storage::Connection& c, const std::string& host, const std::string& user,
                      const Stored& vcard);
int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user);
}  // namespace store

}  // namespace xmppd::vcard
