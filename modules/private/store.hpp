#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::privatexml {

enum class SetResult { Stored, NoSuchUser, TooMany };

// XEP-0049 private XML: table `private_storage`, one row per (host, username,
// namespace) holding the element as serialized XML. Written once against
// storage::Connection for SQLite and PostgreSQL.
namespace store {
std::span<const storage::Migration> migrations();
std::optional<std::string> get(storage::Connection& c, const std::string& host, const std::string& user,
                               const std::string& ns);
// Replaces the namespace's element in one transaction. A new namespace is
// refused when the user already has maxNamespaces of them.
SetResult set(storage::Connection& c, const std::string& host, const std::string& user, const std::string& ns,
              const std::string& xml, int64_t maxNamespaces);
int64_t count(storage::Connection& c, const std::string& host, const std::string& user);
int64_t removeUser(storage::Connection& c, const std::string& host, const std::string& user);
}  // namespace store

}  // namespace xmppd::privatexml
