#include "test_db.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "storage/postgres/postgres.hpp"

namespace storage::test {

std::optional<std::string> pgConninfo() {
    const char* conninfo = std::getenv("XMPPD_TEST_PG");
    if (conninfo == nullptr || *conninfo == '\0') {
        return std::nullopt;
    }
    return std::string(conninfo);
}

namespace {

// Unique across test cases of this run and across concurrent runs sharing
// one database.
std::string uniqueSuffix() {
    static std::atomic<int> counter{0};
    std::random_device random;
    return std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
           std::to_string(random() % 100000);
}

}  // namespace

TestDb::TestDb(Dialect dialect) : dialect_(dialect) {
    if (dialect_ == Dialect::Sqlite) {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern =
            std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/xmppd-storage-XXXXXX";
        if (mkdtemp(pattern.data()) == nullptr) {
            FAIL("mkdtemp failed for " << pattern);
        }
        directory_ = pattern;
        return;
    }
    std::optional<std::string> base = pgConninfo();
    if (!base) {
        WARN(
            "XMPPD_TEST_PG is not set: SKIPPING the PostgreSQL variant of this test "
            "(scripts/test sets it up)");
        available_ = false;
        return;
    }
    schema_ = "xmppd_test_" + uniqueSuffix();
    admin_ = openPostgres(*base);
    admin_->exec("CREATE SCHEMA " + schema_);
    conninfo_ = *base + " options='-c search_path=" + schema_ + "'";
}

TestDb::~TestDb() {
    try {
        if (!directory_.empty()) {
            std::filesystem::remove_all(directory_);
        }
        if (admin_) {
            admin_->exec("DROP SCHEMA IF EXISTS " + schema_ + " CASCADE");
        }
    } catch (...) {
        // Leftovers in /tmp or a stray schema must not fail the test.
    }
}

PoolConfig TestDb::config() const {
    PoolConfig config;
    config.backend = dialect_;
    config.sqlitePath = directory_ + "/test.db";
    config.pgConninfo = conninfo_;
    return config;
}

}  // namespace storage::test
