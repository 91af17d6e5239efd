#pragma once

// A throwaway database per test case, the same way for both backends, so the
// conformance tests run unchanged against SQLite and PostgreSQL:
//
//     STORAGE_TEST_CASE("...", "[storage]") {
//         TestDb db(TestType::dialect);
//         if (!db.available()) { return; }
//         auto conn = db.connect();
//
// SQLite: a fresh file in a fresh temporary directory. PostgreSQL: a fresh
// schema in the database named by XMPPD_TEST_PG, selected through the
// connections' search_path, dropped afterwards. Without XMPPD_TEST_PG the
// PostgreSQL variant warns and is skipped.

#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <string>

#include "storage/connection.hpp"
#include "storage/pool.hpp"

namespace storage::test {

struct SqliteBackend {
    static constexpr Dialect dialect = Dialect::Sqlite;
};
struct PostgresBackend {
    static constexpr Dialect dialect = Dialect::Postgres;
};

#define STORAGE_TEST_CASE(name, tags) \
    TEMPLATE_TEST_CASE(name, tags, ::storage::test::SqliteBackend, ::storage::test::PostgresBackend)

// XMPPD_TEST_PG, if set and not empty.
std::optional<std::string> pgConninfo();

class TestDb {
  public:
    explicit TestDb(Dialect dialect);
    TestDb(const TestDb&) = delete;
    TestDb& operator=(const TestDb&) = delete;
    ~TestDb();

    // False only for PostgreSQL without XMPPD_TEST_PG (already warned).
    bool available() const { return available_; }
    Dialect dialect() const { return dialect_; }

    PoolConfig config() const;
    std::unique_ptr<Connection> connect() const { return storage::connect(config()); }

    // PostgreSQL: a connection outside the test schema, for the test's own
    // mischief (terminating other backends).
    Connection& admin() { return *admin_; }

    // SQLite: the directory holding the database file.
    const std::string& directory() const { return directory_; }

  private:
    Dialect dialect_;
    bool available_ = true;
    std::string directory_;
    std::string schema_;
    std::string conninfo_;
    std::unique_ptr<Connection> admin_;
};

}  // namespace storage::test
