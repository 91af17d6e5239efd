#include <catch2/catch.hpp>

#include <vector>

#include "storage/migrations.hpp"
#include "test_db.hpp"

using storage::Connection;
using storage::Error;
using storage::migrate;
using storage::Migration;
using storage::schemaVersion;
using storage::test::TestDb;

namespace {

// The same text for both dialects, where the SQL allows it.
Migration both(std::string module, int version, std::string sql) {
    return Migration{std::move(module), version, sql, sql};
}

std::vector<std::string> events(Connection& conn) {
    std::vector<std::string> result;
    for (const storage::Row& row : conn.exec("SELECT what FROM events ORDER BY n").rows) {
        result.push_back(row.text(0));
    }
    return result;
}

const std::vector<Migration> kFirstThree = {
    both("m", 1, "CREATE TABLE events (n INTEGER PRIMARY KEY, what TEXT NOT NULL)"),
    both("m", 2, "INSERT INTO events (n, what) VALUES (2, 'two')"),
    // Several statements in one migration.
    both("m", 3,
         "INSERT INTO events (n, what) VALUES (3, 'three');\n"
         "CREATE INDEX events_what ON events (what);\n"),
};

}  // namespace

STORAGE_TEST_CASE("migrations apply in order, once", "[storage][migrations]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    CHECK(schemaVersion(*conn, "m") == 0);

    CHECK(migrate(*conn, kFirstThree) == 3);
    CHECK(schemaVersion(*conn, "m") == 3);
    CHECK(events(*conn) == std::vector<std::string>{"two", "three"});

    // Running twice applies nothing new: no duplicate rows, no errors from
    // re-creating the table or the index.
    CHECK(migrate(*conn, kFirstThree) == 0);
    CHECK(events(*conn) == std::vector<std::string>{"two", "three"});

    // A later release adds a migration: only that one runs.
    std::vector<Migration> four = kFirstThree;
    four.push_back(both("m", 4, "INSERT INTO events (n, what) VALUES (4, 'four')"));
    CHECK(migrate(*conn, four) == 1);
    CHECK(schemaVersion(*conn, "m") == 4);
    CHECK(events(*conn) == std::vector<std::string>{"two", "three", "four"});

    // And a fresh connection sees the same state.
    auto again = db.connect();
    CHECK(migrate(*again, four) == 0);
}

STORAGE_TEST_CASE("modules have versions of their own", "[storage][migrations]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    const std::vector<Migration> migrations = {
        both("parent", 1, "CREATE TABLE parent (id INTEGER PRIMARY KEY)"),
        // Order across modules is kept: this one references the table above.
        both("child", 1,
             "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id))"),
        both("parent", 2, "ALTER TABLE parent ADD COLUMN name TEXT"),
    };
    CHECK(migrate(*conn, migrations) == 3);
    CHECK(schemaVersion(*conn, "parent") == 2);
    CHECK(schemaVersion(*conn, "child") == 1);
    CHECK(schemaVersion(*conn, "nobody") == 0);
    conn->exec("INSERT INTO parent (id, name) VALUES (1, 'p')");
    conn->exec("INSERT INTO child (id, parent) VALUES (1, 1)");
    // Foreign keys are enforced on both backends.
    CHECK_THROWS_AS(conn->exec("INSERT INTO child (id, parent) VALUES (2, 42)"), Error);
}

STORAGE_TEST_CASE("migrations run the script of the connection's dialect", "[storage][migrations]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    const std::vector<Migration> migrations = {
        both("d", 1, "CREATE TABLE d (name TEXT)"),
        Migration{"d", 2, "INSERT INTO d (name) VALUES ('sqlite')",
                  "INSERT INTO d (name) VALUES ('postgres')"},
    };
    migrate(*conn, migrations);
    CHECK(conn->exec("SELECT name FROM d").rows.at(0).text(0) == storage::dialectName(TestType::dialect));
}

STORAGE_TEST_CASE("a failed migration rolls back alone", "[storage][migrations]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    std::vector<Migration> migrations = {
        both("f", 1, "CREATE TABLE kept (x INTEGER)"),
        both("f", 2, "CREATE TABLE dropped (x INTEGER); INSERT INTO no_such_table VALUES (1)"),
    };
    try {
        migrate(*conn, migrations);
        FAIL("broken migration succeeded");
    } catch (const Error& e) {
        CHECK(e.kind == Error::Kind::Other);
        CHECK_THAT(e.what(), Catch::Contains("f v2"));
    }
    CHECK(schemaVersion(*conn, "f") == 1);
    CHECK(conn->exec("SELECT COUNT(*) FROM kept").rows.at(0).integer(0) == 0);
    // DDL is transactional in both backends: the half-done migration left nothing.
    CHECK_THROWS_AS(conn->exec("SELECT COUNT(*) FROM dropped"), Error);

    // The fixed release migrates from where the broken one stopped.
    migrations[1] = both("f", 2, "CREATE TABLE dropped (x INTEGER)");
    CHECK(migrate(*conn, migrations) == 1);
    CHECK(schemaVersion(*conn, "f") == 2);
}

STORAGE_TEST_CASE("migration lists are validated before anything runs", "[storage][migrations]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    const std::vector<Migration> outOfOrder = {
        both("v", 2, "CREATE TABLE two (x INTEGER)"),
        both("v", 1, "CREATE TABLE one (x INTEGER)"),
    };
    const std::vector<Migration> duplicate = {
        both("v", 1, "CREATE TABLE one (x INTEGER)"),
        both("v", 1, "CREATE TABLE two (x INTEGER)"),
    };
    const std::vector<Migration> zero = {both("v", 0, "CREATE TABLE zero (x INTEGER)")};
    for (const auto* migrations : {&outOfOrder, &duplicate, &zero}) {
        try {
            migrate(*conn, *migrations);
            FAIL("invalid migration list accepted");
        } catch (const Error& e) {
            CHECK(e.kind == Error::Kind::Other);
        }
    }
    CHECK(schemaVersion(*conn, "v") == 0);
    CHECK_THROWS_AS(conn->exec("SELECT COUNT(*) FROM two"), Error);
}
