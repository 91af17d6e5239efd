#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "storage/pool.hpp"
#include "test_db.hpp"

using namespace std::chrono_literals;
using storage::Connection;
using storage::Error;
using storage::Pool;
using storage::PoolConfig;
using storage::test::TestDb;

namespace {

// Holds storage threads inside a job until the test lets them go, so the
// test controls exactly what is queued. Times out instead of hanging.
class Gate {
  public:
    void wait() {
        std::unique_lock lock(mutex_);
        ++waiting_;
        changed_.notify_all();
        changed_.wait_for(lock, 20s, [this] { return open_; });
    }
    bool waitForWaiters(int count) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, 20s, [&] { return waiting_ >= count; });
    }
    void open() {
        std::lock_guard lock(mutex_);
        open_ = true;
        changed_.notify_all();
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    int waiting_ = 0;
    bool open_ = false;
};

}  // namespace

STORAGE_TEST_CASE("pool: jobs run on a storage thread", "[storage][pool]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto pool = Pool::open(db.config());
    CHECK(pool->dialect() == TestType::dialect);

    std::promise<std::thread::id> ranOn;
    auto future = ranOn.get_future();
    REQUIRE(pool->submit([&](Connection& conn) {
        conn.exec("SELECT 1");
        ranOn.set_value(std::this_thread::get_id());
    }));
    REQUIRE(future.wait_for(20s) == std::future_status::ready);
    CHECK(future.get() != std::this_thread::get_id());
}

STORAGE_TEST_CASE("pool: runSync waits, returns and rethrows", "[storage][pool]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto pool = Pool::open(db.config());

    std::thread::id syncThread;
    pool->runSync([&](Connection& conn) {
        conn.exec("CREATE TABLE t (x INTEGER)");
        syncThread = std::this_thread::get_id();
    });
    CHECK(syncThread != std::this_thread::get_id());

    std::atomic<int64_t> seen{-1};
    pool->runSync([&](Connection& conn) {
        conn.exec("INSERT INTO t (x) VALUES ($1)", {"7"});
        seen = conn.exec("SELECT x FROM t").rows.at(0).integer(0);
    });
    CHECK(seen == 7);

    try {
        pool->runSync([](Connection& conn) { conn.exec("SELEKT"); });
        FAIL("runSync swallowed the error");
    } catch (const Error& e) {
        CHECK(e.kind == Error::Kind::Other);
    }
    CHECK_THROWS_AS(pool->runSync([](Connection&) { throw std::logic_error("mine"); }), std::logic_error);
    // Errors of runSync are the caller's, not dropped ones.
    CHECK(pool->droppedJobErrors() == 0);

    // runSync from inside a job runs inline instead of deadlocking.
    std::promise<bool> nested;
    auto nestedDone = nested.get_future();
    REQUIRE(pool->submit([&](Connection&) {
        bool ran = false;
        pool->runSync([&](Connection& conn) {
            conn.exec("SELECT 1");
            ran = true;
        });
        nested.set_value(ran);
    }));
    REQUIRE(nestedDone.wait_for(20s) == std::future_status::ready);
    CHECK(nestedDone.get());
}

STORAGE_TEST_CASE("pool: a full queue refuses jobs", "[storage][pool]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    PoolConfig config = db.config();
    config.pgPoolSize = 1;
    config.queueLimit = 2;
    auto pool = Pool::open(config);

    Gate gate;
    std::atomic<int> ran{0};
    // The blocker is taken off the queue by the only thread, which then sits
    // in it, so what follows stays queued.
    REQUIRE(pool->submit([&](Connection&) {
        gate.wait();
        ++ran;
    }));
    REQUIRE(gate.waitForWaiters(1));
    CHECK(pool->queueLength() == 0);

    CHECK(pool->submit([&](Connection&) { ++ran; }));
    CHECK(pool->submit([&](Connection&) { ++ran; }));
    CHECK(pool->queueLength() == 2);
    CHECK_FALSE(pool->submit([&](Connection&) { ran += 100; }));
    CHECK(pool->queueLength() == 2);

    gate.open();
    pool.reset();  // Drains the queue.
    CHECK(ran == 3);
}

STORAGE_TEST_CASE("pool: exceptions escaping jobs are counted", "[storage][pool]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    PoolConfig config = db.config();
    config.pgPoolSize = 1;
    auto pool = Pool::open(config);
    CHECK(pool->submit([](Connection& conn) { conn.exec("SELEKT"); }));
    CHECK(pool->submit([](Connection&) { throw 42; }));
    // FIFO on the only thread: when this returns, both have run.
    bool stillWorks = false;
    pool->runSync([&](Connection& conn) { stillWorks = conn.exec("SELECT 1").rows.size() == 1; });
    CHECK(stillWorks);
    CHECK(pool->droppedJobErrors() == 2);
}

STORAGE_TEST_CASE("pool: destruction runs every queued job", "[storage][pool]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    std::atomic<int> ran{0};
    {
        auto pool = Pool::open(db.config());
        pool->runSync([](Connection& conn) { conn.exec("CREATE TABLE t (x INTEGER)"); });
        for (int i = 0; i < 50; ++i) {
            REQUIRE(pool->submit([&, i](Connection& conn) {
                conn.exec("INSERT INTO t (x) VALUES ($1)", {std::to_string(i)});
                ++ran;
            }));
        }
    }
    CHECK(ran == 50);
    auto conn = db.connect();
    CHECK(conn->exec("SELECT COUNT(*) FROM t").rows.at(0).integer(0) == 50);
}

TEST_CASE("pool: postgres runs jobs concurrently, one connection each", "[storage][pool][postgres]") {
    TestDb db(storage::Dialect::Postgres);
    if (!db.available()) {
        return;
    }
    PoolConfig config = db.config();
    config.pgPoolSize = 3;
    auto pool = Pool::open(config);

    Gate gate;
    std::mutex mutex;
    std::set<std::string> backends;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(pool->submit([&](Connection& conn) {
            std::string pid = conn.exec("SELECT pg_backend_pid()").rows.at(0).text(0);
            {
                std::lock_guard lock(mutex);
                backends.insert(pid);
            }
            gate.wait();
        }));
    }
    // All three jobs are inside at once: three threads.
    CHECK(gate.waitForWaiters(3));
    gate.open();
    pool.reset();
    CHECK(backends.size() == 3);
}

TEST_CASE("pool: open fails with a clear message", "[storage][pool]") {
    SECTION("sqlite: unwritable location") {
        PoolConfig config;
        config.backend = storage::Dialect::Sqlite;
        config.sqlitePath = "/nonexistent-xmppd-dir/sub/xmppd.db";
        try {
            Pool::open(config);
            FAIL("opened a database in a missing directory");
        } catch (const Error& e) {
            CHECK_THAT(e.what(), Catch::Contains("/nonexistent-xmppd-dir/sub/xmppd.db"));
            CHECK_THAT(e.what(), Catch::Contains("cannot open"));
        }
    }
    SECTION("sqlite: no path") {
        PoolConfig config;
        config.backend = storage::Dialect::Sqlite;
        CHECK_THROWS_AS(Pool::open(config), Error);
    }
    SECTION("postgres: nobody listening") {
        PoolConfig config;
        config.backend = storage::Dialect::Postgres;
        // Port 1 on loopback: refused at once, no server needed.
        config.pgConninfo = "host=127.0.0.1 port=1 dbname=x user=x";
        try {
            Pool::open(config);
            FAIL("connected to nothing");
        } catch (const Error& e) {
            CHECK(e.transient);
            CHECK_THAT(e.what(), Catch::Contains("cannot connect to PostgreSQL"));
        }
    }
    SECTION("postgres: bad pool size") {
        PoolConfig config;
        config.backend = storage::Dialect::Postgres;
        config.pgPoolSize = 0;
        CHECK_THROWS_AS(Pool::open(config), Error);
    }
}
