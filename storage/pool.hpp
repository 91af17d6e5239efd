#pragma once

// Storage threads. The server's I/O threads never block on the database:
// they submit() a job, the job runs here with a connection of its own, and
// the job itself posts its result back to the I/O side.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/connection.hpp"

namespace storage {

struct PoolConfig {
    Dialect backend = Dialect::Sqlite;
    std::string sqlitePath;  // used when backend == Sqlite
    std::string pgConninfo;  // used when backend == Postgres (libpq conninfo or URI)
    int pgPoolSize = 4;      // connections, and threads, for Postgres
    size_t queueLimit = 10000;
};

// Opens one connection of the configured backend, outside any pool: for
// tools and tests. Throws Error like Pool::open.
std::unique_ptr<Connection> connect(const PoolConfig& config);

class Pool {
  public:
    using Job = std::function<void(Connection&)>;

    // Opens every connection before starting any thread, so a wrong path or
    // an unreachable database fails here, with a message naming the path or
    // libpq's reason, rather than in the first job. Throws Error.
    //
    // SQLite gets one connection and one thread: SQLite serialises writers
    // anyway, and a single connection makes every write see every earlier
    // one. Postgres gets pgPoolSize connections, one thread each, sharing one
    // queue; jobs may then run concurrently and complete in any order.
    static std::unique_ptr<Pool> open(const PoolConfig& config);

    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;

    // Drains the jobs already queued, then joins the threads. Jobs submitted
    // meanwhile are refused.
    ~Pool();

    // Queues `job` to run on a storage thread. Returns false, without running
    // it, if queueLimit jobs are already waiting (the database cannot keep
    // up: the caller should answer "try later") or the pool is shutting down.
    //
    // The job must catch its own exceptions; an Error{Transient} means "tell
    // the user to retry", and the connection recovers by itself. Anything
    // that escapes is swallowed and counted in droppedJobErrors(), so one
    // bad job cannot take a storage thread down.
    bool submit(Job job);

    // Jobs waiting, not counting those running: a health gauge.
    size_t queueLength() const;

    Dialect dialect() const { return dialect_; }

    // Exceptions that escaped submitted jobs so far.
    uint64_t droppedJobErrors() const { return droppedJobErrors_.load(std::memory_order_relaxed); }

    // Queues `job` behind the jobs already waiting (ignoring queueLimit), waits
    // until a storage thread has run it, and rethrows whatever it threw. For
    // startup (migrations) and tests, never for I/O threads. Called from
    // inside a job of this pool, it runs `job` at once on that job's
    // connection instead of deadlocking. Throws Error{Other} if the pool is
    // shutting down.
    void runSync(const Job& job);

  private:
    explicit Pool(Dialect dialect, size_t queueLimit);
    void start(std::vector<std::unique_ptr<Connection>> connections);
    void work(Connection& connection);

    const Dialect dialect_;
    const size_t queueLimit_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> queue_;
    bool stopping_ = false;

    std::atomic<uint64_t> droppedJobErrors_{0};
    std::vector<std::unique_ptr<Connection>> connections_;
    std::vector<std::thread> threads_;
};

}  // namespace storage
