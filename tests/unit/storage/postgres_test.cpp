// PostgreSQL-only behaviour: surviving the database going away.

#include <catch2/catch.hpp>

#include <string>

#include "storage/pool.hpp"
#include "storage/postgres/postgres.hpp"
#include "test_db.hpp"

using storage::Connection;
using storage::Error;
using storage::Pool;
using storage::PoolConfig;
using storage::test::TestDb;

namespace {

std::string backendPid(Connection& conn) {
    return conn.exec("SELECT pg_backend_pid()").rows.at(0).text(0);
}

// What an outage looks like from the client: the server end of the
// connection goes away. The timeout makes the call wait until the backend
// has actually exited, so the next statement cannot race it.
void terminate(TestDb& db, const std::string& pid) {
    storage::Result result =
        db.admin().exec("SELECT pg_terminate_backend(CAST($1 AS INTEGER), 10000)", {pid});
    REQUIRE(result.rows.at(0).text(0) == "t");
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

}  // namespace

TEST_CASE("postgres: a lost connection fails once, then reconnects", "[storage][postgres]") {
    TestDb db(storage::Dialect::Postgres);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    conn->exec("CREATE TABLE t (x INTEGER)");
    // Prepared (and cached) before the outage, so the retry must prepare again
    // on the new session.
    conn->exec("INSERT INTO t (x) VALUES ($1)", {"1"});
    const std::string pid = backendPid(*conn);

    terminate(db, pid);

    try {
        conn->exec("INSERT INTO t (x) VALUES ($1)", {"2"});
        FAIL("statement on a terminated connection succeeded");
    } catch (const Error& e) {
        CHECK(e.kind == Error::Kind::Transient);
        CHECK(e.transient);
    }
    conn->exec("INSERT INTO t (x) VALUES ($1)", {"3"});
    CHECK(backendPid(*conn) != pid);
    // The search_path from the conninfo survived the reconnect.
    CHECK(conn->exec("SELECT COUNT(*) FROM t").rows.at(0).integer(0) == 2);
}

TEST_CASE("postgres: a connection lost inside a transaction stays failed until rollback",
          "[storage][postgres][transaction]") {
    TestDb db(storage::Dialect::Postgres);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    conn->exec("CREATE TABLE t (x INTEGER)");
    {
        storage::Transaction tx(*conn);
        conn->exec("INSERT INTO t (x) VALUES ($1)", {"1"});
        terminate(db, backendPid(*conn));
        CHECK(errorKind([&] { conn->exec("INSERT INTO t (x) VALUES ($1)", {"2"}); }) ==
              Error::Kind::Transient);
        // Reconnecting here would run this outside the transaction and
        // commit it on its own: refused.
        CHECK(errorKind([&] { conn->exec("INSERT INTO t (x) VALUES ($1)", {"3"}); }) ==
              Error::Kind::Transient);
        CHECK(errorKind([&] { tx.commit(); }) == Error::Kind::Transient);
    }
    // The transaction's destructor acknowledged the loss; nothing of it
    // was committed.
    CHECK(conn->exec("SELECT COUNT(*) FROM t").rows.at(0).integer(0) == 0);

    // Explicit rollback() after the loss works the same way.
    conn->begin();
    terminate(db, backendPid(*conn));
    CHECK(errorKind([&] { conn->exec("SELECT 1"); }) == Error::Kind::Transient);
    CHECK(errorKind([&] { conn->begin(); }) == Error::Kind::Transient);
    conn->rollback();
    CHECK(conn->exec("SELECT COUNT(*) FROM t").rows.at(0).integer(0) == 0);
}

TEST_CASE("postgres: COMMIT of a failed transaction is an error", "[storage][postgres][transaction]") {
    TestDb db(storage::Dialect::Postgres);
    if (!db.available()) {
        return;
    }
    auto conn = db.connect();
    conn->exec("CREATE TABLE t (x INTEGER PRIMARY KEY)");
    conn->begin();
    conn->exec("INSERT INTO t (x) VALUES (1)");
    CHECK(errorKind([&] { conn->exec("INSERT INTO t (x) VALUES (1)"); }) == Error::Kind::UniqueViolation);
    // PostgreSQL answers COMMIT with ROLLBACK here; that must not pass as
    // success.
    CHECK(errorKind([&] { conn->commit(); }) == Error::Kind::Other);
    CHECK(conn->exec("SELECT COUNT(*) FROM t").rows.at(0).integer(0) == 0);
}

TEST_CASE("postgres: pool jobs recover from an outage", "[storage][postgres][pool]") {
    TestDb db(storage::Dialect::Postgres);
    if (!db.available()) {
        return;
    }
    PoolConfig config = db.config();
    config.pgPoolSize = 1;
    auto pool = Pool::open(config);
    std::string pid;
    pool->runSync([&](Connection& conn) { pid = backendPid(conn); });

    terminate(db, pid);

    // The job sees a transient error (and would tell its user to retry)...
    bool transient = false;
    pool->runSync([&](Connection& conn) {
        try {
            conn.exec("SELECT 1");
        } catch (const Error& e) {
            transient = e.transient;
        }
    });
    CHECK(transient);
    // ...and the next job finds the database again, without a restart.
    std::string newPid;
    pool->runSync([&](Connection& conn) { newPid = backendPid(conn); });
    CHECK_FALSE(newPid.empty());
    CHECK(newPid != pid);
    CHECK(pool->droppedJobErrors() == 0);
}

TEST_CASE("postgres: an unreachable server is a transient error", "[storage][postgres]") {
    // No server needed: nothing listens on port 1.
    try {
        storage::openPostgres("host=127.0.0.1 port=1 dbname=x user=x");
        FAIL("connected to nothing");
    } catch (const Error& e) {
        CHECK(e.kind == Error::Kind::Transient);
        CHECK_THAT(e.what(), Catch::Contains("cannot connect to PostgreSQL"));
        CHECK_THAT(e.what(), Catch::Contains("127.0.0.1"));
    }
}
