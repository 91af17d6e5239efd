#include "storage/pool.hpp"

#include <future>

#ifdef __linux__
#include <pthread.h>
#endif

#include "storage/postgres/postgres.hpp"
#include "storage/sqlite/sqlite.hpp"

namespace storage {
namespace {

// Which pool, if any, the current thread works for, and with which
// connection: lets runSync() called from inside a job run inline instead of
// waiting for a thread that is busy running the caller.
struct WorkerContext {
    const Pool* pool = nullptr;
    Connection* connection = nullptr;
};
thread_local WorkerContext currentWorker;

}  // namespace

std::unique_ptr<Connection> connect(const PoolConfig& config) {
    switch (config.backend) {
        case Dialect::Sqlite:
            return openSqlite(config.sqlitePath);
        case Dialect::Postgres:
            return openPostgres(config.pgConninfo);
    }
    throw Error(Error::Kind::Other, "unknown storage backend");
}

std::unique_ptr<Pool> Pool::open(const PoolConfig& config) {
    std::vector<std::unique_ptr<Connection>> connections;
    if (config.backend == Dialect::Postgres) {
        if (config.pgPoolSize < 1) {
            throw Error(Error::Kind::Other,
                        "PostgreSQL pool size must be at least 1, got " + std::to_string(config.pgPoolSize));
        }
        for (int i = 0; i < config.pgPoolSize; ++i) {
            connections.push_back(connect(config));
        }
    } else {
        connections.push_back(connect(config));
    }
    std::unique_ptr<Pool> pool(new Pool(config.backend, config.queueLimit));
    // If starting a thread fails, ~Pool joins the ones already started.
    pool->start(std::move(connections));
    return pool;
}

Pool::Pool(Dialect dialect, size_t queueLimit) : dialect_(dialect), queueLimit_(queueLimit) {}

void Pool::start(std::vector<std::unique_ptr<Connection>> connections) {
    connections_ = std::move(connections);
    threads_.reserve(connections_.size());
    for (size_t i = 0; i < connections_.size(); ++i) {
        Connection* connection = connections_[i].get();
        threads_.emplace_back([this, connection, i] {
#ifdef __linux__
            // Named so that top -H and debuggers show what the thread is.
            const std::string name = "storage-" + std::to_string(i);
            pthread_setname_np(pthread_self(), name.c_str());
#else
            (void)i;
#endif
            work(*connection);
        });
    }
}

Pool::~Pool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& thread : threads_) {
        thread.join();
    }
}

bool Pool::submit(Job job) {
    {
        std::lock_guard lock(mutex_);
        if (stopping_ || queue_.size() >= queueLimit_) {
            return false;
        }
        queue_.push_back(std::move(job));
    }
    wake_.notify_one();
    return true;
}

size_t Pool::queueLength() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

void Pool::runSync(const Job& job) {
    if (currentWorker.pool == this) {
        job(*currentWorker.connection);
        return;
    }
    // The task owns the promise, so set_value() never races with the
    // caller destroying it after get() returns.
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    {
        std::lock_guard lock(mutex_);
        if (stopping_) {
            throw Error(Error::Kind::Other, "storage pool is shutting down");
        }
        // `job` outlives the task's use of it: the caller waits below.
        queue_.push_back([&job, done](Connection& connection) {
            try {
                job(connection);
                done->set_value();
            } catch (...) {
                done->set_exception(std::current_exception());
            }
        });
    }
    wake_.notify_one();
    finished.get();
}

void Pool::work(Connection& connection) {
    currentWorker = WorkerContext{this, &connection};
    for (;;) {
        Job job;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                return;  // Stopping, and everything queued has run.
            }
            job = std::move(queue_.front());
            queue_.pop_front();
        }
        try {
            job(connection);
        } catch (...) {
            droppedJobErrors_.fetch_add(1, std::memory_order_relaxed);
        }
    }
}

}  // namespace storage
