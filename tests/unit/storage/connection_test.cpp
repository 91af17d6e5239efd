// Conformance of the Connection contract: every case runs against SQLite and
// PostgreSQL, unchanged.

#include <catch2/catch.hpp>

#include "storage/connection.hpp"
#include "test_db.hpp"

using storage::Connection;
using storage::Error;
using storage::Result;
using storage::Transaction;
using storage::Value;
using storage::test::TestDb;

namespace {

void createPeople(Connection& conn) {
    conn.exec("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT)");
}

Error::Kind errorKind(const std::function<void()>& action) {
    try {
        action();
    } catch (const Error& e) {
        return e.kind;
    }
    FAIL("expected storage::Error");
    return Error::Kind::Other;
}

int64_t countPeople(Connection& conn) {
    return conn.exec("SELECT COUNT(*) FROM people").rows.at(0).integer(0);
}

}  // namespace

STORAGE_TEST_CASE("exec binds $N parameters and NULLs", "[storage][connection]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    CHECK(conn->dialect() == TestType::dialect);
    createPeople(*conn);

    Result inserted =
        conn->exec("INSERT INTO people (id, name, note) VALUES ($1, $2, $3)", {"1", "alice", std::nullopt});
    CHECK(inserted.affected == 1);
    CHECK(inserted.rows.empty());
    // Placeholders in any order, and non-ASCII text.
    conn->exec("INSERT INTO people (note, name, id) VALUES ($3, $2, $1)",
               {"2", "b\xc3\xa9r\xc3\xa9nice \xe2\x98\x83", ""});

    Result rows = conn->exec("SELECT id, name, note FROM people ORDER BY id");
    REQUIRE(rows.rows.size() == 2);
    CHECK(rows.affected == 0);
    CHECK(rows.rows[0].integer(0) == 1);
    CHECK(rows.rows[0].text(1) == "alice");
    CHECK_FALSE(rows.rows[0][2].has_value());
    CHECK(rows.rows[0].text(2).empty());
    CHECK(rows.rows[1].text(1) == "b\xc3\xa9r\xc3\xa9nice \xe2\x98\x83");
    // The empty string is not NULL.
    REQUIRE(rows.rows[1][2].has_value());
    CHECK(rows.rows[1][2]->empty());

    // One parameter used twice, and a NULL parameter in a comparison.
    Result byName = conn->exec("SELECT id FROM people WHERE name = $1 OR note = $1", {"alice"});
    REQUIRE(byName.rows.size() == 1);
    CHECK(byName.rows[0].integer(0) == 1);
    CHECK(conn->exec("SELECT id FROM people WHERE note IS NULL AND CAST($1 AS TEXT) IS NULL", {std::nullopt})
              .rows.size() == 1);

    // The span overload, as used with parameters built at run time.
    std::vector<Value> params{"2"};
    CHECK(conn->exec("SELECT name FROM people WHERE id = $1", params).rows.size() == 1);
}

STORAGE_TEST_CASE("exec reports changed rows only", "[storage][connection]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    createPeople(*conn);
    CHECK(conn->exec("INSERT INTO people (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')").affected == 3);
    CHECK(conn->exec("SELECT * FROM people").affected == 0);
    CHECK(conn->exec("UPDATE people SET note = 'x' WHERE id >= $1", {"2"}).affected == 2);
    CHECK(conn->exec("UPDATE people SET note = 'x' WHERE id = 99").affected == 0);
    CHECK(conn->exec("CREATE TABLE other (x INTEGER)").affected == 0);
    CHECK(conn->exec("DELETE FROM people WHERE id = $1", {"1"}).affected == 1);
    CHECK(countPeople(*conn) == 2);
}

STORAGE_TEST_CASE("integers round-trip as decimal text", "[storage][connection]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    conn->exec("CREATE TABLE numbers (n BIGINT NOT NULL)");
    const int64_t values[] = {0, -1, INT64_MAX, INT64_MIN, 1700000000123};
    for (int64_t value : values) {
        conn->exec("INSERT INTO numbers (n) VALUES ($1)", {std::to_string(value)});
    }
    Result rows = conn->exec("SELECT n FROM numbers ORDER BY n");
    REQUIRE(rows.rows.size() == 5);
    CHECK(rows.rows[0].integer(0) == INT64_MIN);
    CHECK(rows.rows[1].integer(0) == -1);
    CHECK(rows.rows[2].integer(0) == 0);
    CHECK(rows.rows[3].integer(0) == 1700000000123);
    CHECK(rows.rows[4].integer(0) == INT64_MAX);
    // Integer parameters compare as numbers, not text ("10" < "9").
    CHECK(conn->exec("SELECT COUNT(*) FROM numbers WHERE n > $1", {"9"}).rows.at(0).integer(0) == 2);
}

STORAGE_TEST_CASE("Row accessors check what they return", "[storage][connection]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    Result result = conn->exec("SELECT NULL, 'abc', '12x'");
    REQUIRE(result.rows.size() == 1);
    const storage::Row& row = result.rows[0];
    CHECK(row.values.size() == 3);
    CHECK(errorKind([&] { row.integer(0); }) == Error::Kind::Other);
    CHECK(errorKind([&] { row.integer(1); }) == Error::Kind::Other);
    CHECK(errorKind([&] { row.integer(2); }) == Error::Kind::Other);
    CHECK(errorKind([&] { row.text(3); }) == Error::Kind::Other);
    CHECK(errorKind([&] { (void)row[3]; }) == Error::Kind::Other);
}

STORAGE_TEST_CASE("a unique violation has its own error kind", "[storage][connection]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    createPeople(*conn);
    conn->exec("CREATE UNIQUE INDEX people_name ON people (name)");
    conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "alice"});

    // Primary key and unique index alike.
    try {
        conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "bob"});
        FAIL("duplicate primary key accepted");
    } catch (const Error& e) {
        CHECK(e.kind == Error::Kind::UniqueViolation);
        CHECK(storage::isUniqueViolation(e));
        CHECK_FALSE(e.transient);
    }
    CHECK(errorKind([&] {
              conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"2", "alice"});
          }) == Error::Kind::UniqueViolation);
    // Other constraints are not unique violations.
    CHECK(errorKind([&] {
              conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"3", std::nullopt});
          }) == Error::Kind::Other);

    // The connection is still usable.
    CHECK(countPeople(*conn) == 1);
}

STORAGE_TEST_CASE("misuse and bad SQL are Other errors", "[storage][connection]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    createPeople(*conn);
    CHECK(errorKind([&] { conn->exec("SELEKT 1"); }) == Error::Kind::Other);
    CHECK(errorKind([&] { conn->exec("SELECT * FROM no_such_table"); }) == Error::Kind::Other);
    // Parameters and placeholders must match one to one.
    CHECK(errorKind([&] { conn->exec("SELECT id FROM people WHERE id = $1 AND name = $2", {"1"}); }) ==
          Error::Kind::Other);
    CHECK(errorKind([&] {
              conn->exec("SELECT id FROM people WHERE id = $1", {"1", "2"});
          }) == Error::Kind::Other);
    // One statement per exec(), as prepared statements demand.
    CHECK(errorKind([&] { conn->exec("SELECT 1; SELECT 2"); }) == Error::Kind::Other);
    // Postgres cannot store NUL in text.
    CHECK(errorKind([&] {
              conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", std::string("a\0b", 3)});
          }) == Error::Kind::Other);
    // Still usable after all of that; a trailing ';' is fine.
    CHECK(conn->exec("SELECT COUNT(*) FROM people;").rows.at(0).integer(0) == 0);
}

STORAGE_TEST_CASE("execScript runs several statements", "[storage][connection]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    conn->execScript(
        "CREATE TABLE a (x INTEGER);\n"
        "INSERT INTO a (x) VALUES (1);\n"
        "INSERT INTO a (x) VALUES (2);\n");
    CHECK(conn->exec("SELECT SUM(x) FROM a").rows.at(0).integer(0) == 3);
    CHECK(errorKind([&] { conn->execScript("INSERT INTO a (x) VALUES (3); SELEKT"); }) == Error::Kind::Other);
}

STORAGE_TEST_CASE("transactions commit and roll back", "[storage][connection][transaction]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    auto other = db.connect();
    createPeople(*conn);

    SECTION("commit makes the changes visible to other connections") {
        Transaction tx(*conn);
        conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "alice"});
        conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"2", "bob"});
        tx.commit();
        CHECK(countPeople(*other) == 2);
    }

    SECTION("leaving the scope without commit rolls back") {
        {
            Transaction tx(*conn);
            conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "alice"});
            CHECK(countPeople(*conn) == 1);
        }
        CHECK(countPeople(*conn) == 0);
        CHECK(countPeople(*other) == 0);
    }

    SECTION("an exception unwinding through the transaction rolls back") {
        try {
            Transaction tx(*conn);
            conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "alice"});
            conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "again"});
            tx.commit();
            FAIL("duplicate accepted");
        } catch (const Error& e) {
            CHECK(e.kind == Error::Kind::UniqueViolation);
        }
        CHECK(countPeople(*conn) == 0);
        // And the connection takes new transactions.
        Transaction tx(*conn);
        conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "alice"});
        tx.commit();
        CHECK(countPeople(*other) == 1);
    }

    SECTION("explicit begin, commit and rollback") {
        conn->begin();
        conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "alice"});
        conn->rollback();
        conn->begin();
        conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"2", "bob"});
        conn->commit();
        Result rows = conn->exec("SELECT name FROM people");
        REQUIRE(rows.rows.size() == 1);
        CHECK(rows.rows[0].text(0) == "bob");
    }

    SECTION("transactions do not nest, and rollback is always safe") {
        conn->rollback();  // Outside a transaction: nothing happens.
        CHECK(errorKind([&] { conn->commit(); }) == Error::Kind::Other);
        Transaction tx(*conn);
        CHECK(errorKind([&] { conn->begin(); }) == Error::Kind::Other);
        conn->exec("INSERT INTO people (id, name) VALUES ($1, $2)", {"1", "alice"});
        tx.commit();
        CHECK(countPeople(*other) == 1);
    }
}
