#include "storage/sqlite/sqlite.hpp"

#include <sqlite3.h>

#include <climits>
#include <cstring>

#include "storage/detail/statement_cache.hpp"

namespace storage {
namespace {

// Enough for every constant statement the server and its modules use; beyond
// that the least recently used statement is finalized and re-prepared later.
constexpr size_t kStatementCacheSize = 128;

// Long enough to ride out an admin tool's write transaction on the same file,
// short enough that a stuck lock surfaces as a transient error.
constexpr int kBusyTimeoutMs = 5000;

Error::Kind kindOf(int code) {
    switch (code) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
            return Error::Kind::UniqueViolation;
        default:
            break;
    }
    switch (code & 0xff) {
        // The database is there but cannot serve us right now: another
        // process holds a lock, the disk is full or failing, memory ran out.
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
        case SQLITE_FULL:
        case SQLITE_IOERR:
        case SQLITE_NOMEM:
            return Error::Kind::Transient;
        default:
            return Error::Kind::Other;
    }
}

// Enough of the statement to find it in the code, without flooding logs.
std::string excerpt(std::string_view sql) {
    constexpr size_t kMax = 120;
    if (sql.size() <= kMax) {
        return std::string(sql);
    }
    return std::string(sql.substr(0, kMax)) + "...";
}

class SqliteConnection final : public Connection {
  public:
    explicit SqliteConnection(const std::string& path) {
        const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
        int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
        if (rc != SQLITE_OK) {
            std::string reason = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
            sqlite3_close_v2(db_);
            throw Error(kindOf(rc), "cannot open SQLite database '" + path + "': " + reason);
        }
        try {
            sqlite3_extended_result_codes(db_, 1);
            sqlite3_busy_timeout(db_, kBusyTimeoutMs);
            // journal_mode reads the file header, so this is also where a
            // file that is not a database is detected. A file system without
            // shared memory support answers with another mode; durability
            // does not depend on WAL, so that is accepted.
            execScript("PRAGMA journal_mode=WAL");
            execScript("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON");
        } catch (const Error& e) {
            sqlite3_close_v2(db_);
            db_ = nullptr;
            throw Error(e.kind, "cannot open SQLite database '" + path + "': " + e.what());
        }
    }

    ~SqliteConnection() override {
        for (sqlite3_stmt* stmt : cache_.clear()) {
            sqlite3_finalize(stmt);
        }
        // An open transaction is rolled back by closing.
        sqlite3_close_v2(db_);
    }

    Dialect dialect() const override { return Dialect::Sqlite; }

    using Connection::exec;

    // Repeats the base's default: defaults of virtual functions bind to the
    // static type, and internal calls here use this class.
    Result exec(std::string_view sql, std::span<const Value> params = {}) override {
        sqlite3_stmt* stmt = prepare(sql);
        // A cached statement must be reset on every exit: one left mid-step
        // keeps a read transaction open (blocking WAL checkpoints), and its
        // bindings point into `params`, which the caller is about to free.
        struct ResetOnExit {
            sqlite3_stmt* stmt;
            ~ResetOnExit() {
                sqlite3_reset(stmt);
                sqlite3_clear_bindings(stmt);
            }
        } resetOnExit{stmt};

        bind(stmt, sql, params);

        Result result;
        const int64_t changesBefore = sqlite3_total_changes64(db_);
        const int columns = sqlite3_column_count(stmt);
        for (;;) {
            int rc = sqlite3_step(stmt);
            if (rc == SQLITE_DONE) {
                break;
            }
            if (rc != SQLITE_ROW) {
                fail(rc, sql);
            }
            Row& row = result.rows.emplace_back();
            row.values.reserve(static_cast<size_t>(columns));
            for (int column = 0; column < columns; ++column) {
                row.values.push_back(columnValue(stmt, column));
            }
        }
        // sqlite3_changes64() keeps the count of the last INSERT, UPDATE or
        // DELETE, even across later SELECTs and DDL; only trust it when this
        // statement changed something.
        if (sqlite3_total_changes64(db_) != changesBefore) {
            result.affected = sqlite3_changes64(db_);
        }
        return result;
    }

    void execScript(std::string_view sql) override {
        // sqlite3_exec needs a terminated string.
        const std::string script(sql);
        char* message = nullptr;
        int rc = sqlite3_exec(db_, script.c_str(), nullptr, nullptr, &message);
        if (rc != SQLITE_OK) {
            std::string reason = message != nullptr ? message : sqlite3_errstr(rc);
            sqlite3_free(message);
            throw Error(kindOf(rc), "SQLite: " + reason + " (in: " + excerpt(sql) + ")");
        }
    }

    void begin() override {
        if (inTransaction_) {
            throw Error(Error::Kind::Other, "begin(): a transaction is already open (they do not nest)");
        }
        // IMMEDIATE takes the write lock now. A deferred transaction that
        // reads and then writes can deadlock against another process doing
        // the same, which busy_timeout cannot resolve.
        exec("BEGIN IMMEDIATE");
        inTransaction_ = true;
    }

    void commit() override {
        if (!inTransaction_) {
            throw Error(Error::Kind::Other, "commit() without begin()");
        }
        if (sqlite3_get_autocommit(db_) != 0) {
            // SQLite rolls back by itself after some errors (disk full, I/O
            // error); committing would silently lose the earlier statements.
            inTransaction_ = false;
            throw Error(Error::Kind::Transient,
                        "commit(): SQLite already rolled the transaction back after an error");
        }
        try {
            exec("COMMIT");
        } catch (const Error&) {
            // A failed COMMIT (SQLITE_BUSY) may leave the transaction open
            // for a retry or rollback; track what SQLite says.
            inTransaction_ = sqlite3_get_autocommit(db_) == 0;
            throw;
        }
        inTransaction_ = false;
    }

    void rollback() override {
        inTransaction_ = false;
        if (sqlite3_get_autocommit(db_) == 0) {
            exec("ROLLBACK");
        }
    }

  private:
    sqlite3_stmt* prepare(std::string_view sql) {
        if (sqlite3_stmt** cached = cache_.find(sql)) {
            return *cached;
        }
        if (sql.size() > static_cast<size_t>(INT_MAX)) {
            throw Error(Error::Kind::Other, "SQL statement too long");
        }
        sqlite3_stmt* stmt = nullptr;
        const char* tail = nullptr;
        int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                    &stmt, &tail);
        if (rc != SQLITE_OK) {
            fail(rc, sql);
        }
        if (stmt == nullptr) {
            throw Error(Error::Kind::Other, "exec(): empty SQL statement");
        }
        // Postgres refuses several statements in one prepared statement, and
        // SQLite would silently ignore all but the first: refuse them here
        // too. Trailing whitespace and comments prepare to nothing.
        const char* end = sql.data() + sql.size();
        if (tail != nullptr && tail < end) {
            sqlite3_stmt* extra = nullptr;
            rc = sqlite3_prepare_v2(db_, tail, static_cast<int>(end - tail), &extra, nullptr);
            sqlite3_finalize(extra);
            if (rc != SQLITE_OK || extra != nullptr) {
                sqlite3_finalize(stmt);
                throw Error(Error::Kind::Other,
                            "exec() runs exactly one statement, use execScript() for several (in: " +
                                excerpt(sql) + ")");
            }
        }
        if (std::optional<sqlite3_stmt*> evicted = cache_.insert(std::string(sql), stmt)) {
            sqlite3_finalize(*evicted);
        }
        return stmt;
    }

    void bind(sqlite3_stmt* stmt, std::string_view sql, std::span<const Value> params) {
        // Named parameters with equal names share one index, so a count
        // equal to the number of parameters plus every $N being found means
        // placeholders and parameters match one to one, as Postgres demands.
        const int placeholders = sqlite3_bind_parameter_count(stmt);
        if (static_cast<size_t>(placeholders) != params.size()) {
            throw Error(Error::Kind::Other, "statement has " + std::to_string(placeholders) +
                                                " placeholders but " + std::to_string(params.size()) +
                                                " parameters were given (in: " + excerpt(sql) + ")");
        }
        for (size_t i = 0; i < params.size(); ++i) {
            const std::string name = "$" + std::to_string(i + 1);
            const int index = sqlite3_bind_parameter_index(stmt, name.c_str());
            if (index == 0) {
                throw Error(Error::Kind::Other,
                            "placeholder " + name + " missing (in: " + excerpt(sql) + ")");
            }
            const Value& param = params[i];
            int rc = SQLITE_OK;
            if (!param) {
                rc = sqlite3_bind_null(stmt, index);
            } else {
                // Postgres cannot carry NUL in text; refuse it on both
                // backends so data accepted here also migrates there.
                if (std::memchr(param->data(), '\0', param->size()) != nullptr) {
                    throw Error(Error::Kind::Other, "parameter " + name + " contains a NUL byte");
                }
                // STATIC: the bindings are cleared before exec() returns.
                rc = sqlite3_bind_text64(stmt, index, param->data(), param->size(), SQLITE_STATIC,
                                         SQLITE_UTF8);
            }
            if (rc != SQLITE_OK) {
                fail(rc, sql);
            }
        }
    }

    Value columnValue(sqlite3_stmt* stmt, int column) {
        if (sqlite3_column_type(stmt, column) == SQLITE_NULL) {
            return std::nullopt;
        }
        const unsigned char* text = sqlite3_column_text(stmt, column);
        const int size = sqlite3_column_bytes(stmt, column);
        if (text == nullptr) {
            // Also the answer for an empty BLOB, which is not an error.
            if (sqlite3_errcode(db_) == SQLITE_NOMEM) {
                throw Error(Error::Kind::Transient, "SQLite: out of memory reading a column");
            }
            return std::string();
        }
        return std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
    }

    [[noreturn]] void fail(int rc, std::string_view sql) {
        throw Error(kindOf(rc),
                    std::string("SQLite: ") + sqlite3_errmsg(db_) + " (in: " + excerpt(sql) + ")");
    }

    sqlite3* db_ = nullptr;
    bool inTransaction_ = false;
    detail::StatementCache<sqlite3_stmt*> cache_{kStatementCacheSize};
};

}  // namespace

std::unique_ptr<Connection> openSqlite(const std::string& path) {
    if (path.empty()) {
        // sqlite3_open_v2 would silently create a private temporary database.
        throw Error(Error::Kind::Other, "cannot open SQLite database: no path configured");
    }
    return std::make_unique<SqliteConnection>(path);
}

}  // namespace storage
