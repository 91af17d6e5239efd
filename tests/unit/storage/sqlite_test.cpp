// SQLite-only behaviour: durability settings and opening files.

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "storage/sqlite/sqlite.hpp"
#include "test_db.hpp"

using storage::Error;
using storage::test::TestDb;

TEST_CASE("sqlite: connections are set up for durability", "[storage][sqlite]") {
    TestDb db(storage::Dialect::Sqlite);
    auto conn = db.connect();
    CHECK(conn->exec("PRAGMA journal_mode").rows.at(0).text(0) == "wal");
    CHECK(conn->exec("PRAGMA synchronous").rows.at(0).integer(0) == 2);  // FULL
    CHECK(conn->exec("PRAGMA foreign_keys").rows.at(0).integer(0) == 1);
    CHECK(conn->exec("PRAGMA busy_timeout").rows.at(0).integer(0) > 0);
}

TEST_CASE("sqlite: a committed write survives kill -9", "[storage][sqlite]") {
    TestDb db(storage::Dialect::Sqlite);
    const std::string path = db.config().sqlitePath;
    {
        auto conn = db.connect();
        conn->exec("CREATE TABLE t (x INTEGER)");
    }
    int ready[2];
    REQUIRE(pipe(ready) == 0);
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The child only touches its own connection, reports "committed" and
        // waits to be killed: no Catch2, no exit handlers.
        try {
            auto conn = storage::openSqlite(path);
            storage::Transaction tx(*conn);
            conn->exec("INSERT INTO t (x) VALUES ($1)", {"42"});
            tx.commit();
            if (write(ready[1], "k", 1) != 1) {
                _exit(2);
            }
        } catch (...) {
            _exit(1);
        }
        for (;;) {
            pause();
        }
    }
    close(ready[1]);
    char byte = 0;
    const ssize_t got = read(ready[0], &byte, 1);
    close(ready[0]);
    kill(child, SIGKILL);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE(got == 1);
    CHECK(WIFSIGNALED(status));

    auto conn = db.connect();
    CHECK(conn->exec("SELECT x FROM t").rows.at(0).integer(0) == 42);
}

TEST_CASE("sqlite: a file that is not a database is refused at open", "[storage][sqlite]") {
    TestDb db(storage::Dialect::Sqlite);
    const std::string path = db.directory() + "/garbage.db";
    {
        std::ofstream out(path);
        out << std::string(4096, 'x');
    }
    try {
        storage::openSqlite(path);
        FAIL("opened garbage");
    } catch (const Error& e) {
        CHECK_THAT(e.what(), Catch::Contains(path));
    }
}
