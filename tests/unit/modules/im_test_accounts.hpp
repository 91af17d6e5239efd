#pragma once

#include <memory>
#include <span>
#include <string>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace storage::test {
class TestDb;
}

namespace xmppd::test {

// A fresh database with the accounts table and the given module migrations.
std::unique_ptr<storage::Connection> migratedWith(storage::test::TestDb& db,
                                                  std::span<const storage::Migration> migrations);
// Creates an account (credentials are placeholders; the stores only check existence).
void createAccount(storage::Connection& c, const std::string& host, const std::string& user);

}  // namespace xmppd::test
