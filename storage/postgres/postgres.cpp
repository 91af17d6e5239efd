#include "storage/postgres/postgres.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "storage/detail/statement_cache.hpp"

namespace storage {
namespace {

// Server-side prepared statements cost backend memory; keep the set bounded
// (see StatementCache) but larger than the number of constant statements.
constexpr size_t kStatementCacheSize = 128;

// How long a connection waits after a failed connect before trying again.
constexpr std::chrono::seconds kReconnectBackoff{1};

// Used unless the conninfo sets its own: libpq's default is to wait forever,
// which would block a storage thread for minutes on an unreachable host.
constexpr const char* kDefaultConnectTimeout = "10";

struct ResultDeleter {
    void operator()(PGresult* result) const { PQclear(result); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

bool startsWith(std::string_view text, std::string_view prefix) {
    return text.substr(0, prefix.size()) == prefix;
}

Error::Kind kindOfSqlState(std::string_view state) {
    if (state == "23505") {
        return Error::Kind::UniqueViolation;
    }
    if (state == "08P01") {
        return Error::Kind::Other;  // Protocol violation: our bug, not an outage.
    }
    // Class 08: connection exception; 53: insufficient resources (disk
    // full, out of memory, too many connections); 57P01-57P03: the server is
    // shutting down or starting; 40001/40P01: serialization failure and
    // deadlock, which the documentation says to retry; 55P03: lock not
    // available; 57014: statement timeout or cancel.
    if (startsWith(state, "08") || startsWith(state, "53") || state == "57P01" || state == "57P02" ||
        state == "57P03" || state == "40001" || state == "40P01" || state == "55P03" || state == "57014") {
        return Error::Kind::Transient;
    }
    return Error::Kind::Other;
}

// libpq messages end with a newline and may span lines (with tab-indented
// hints); logs want one line.
std::string oneLine(const char* message) {
    std::string text;
    for (const char* c = message != nullptr ? message : ""; *c != '\0'; ++c) {
        const bool space = *c == '\n' || *c == '\t' || *c == ' ';
        if (!space) {
            text.push_back(*c);
        } else if (!text.empty() && text.back() != ' ') {
            text.push_back(' ');
        }
    }
    if (!text.empty() && text.back() == ' ') {
        text.pop_back();
    }
    return text;
}

std::string excerpt(std::string_view sql) {
    constexpr size_t kMax = 120;
    if (sql.size() <= kMax) {
        return std::string(sql);
    }
    return std::string(sql.substr(0, kMax)) + "...";
}

// libpq's default notice processor prints to stderr (for example "relation
// already exists, skipping" from CREATE TABLE IF NOT EXISTS). A library must
// not write there, and notices carry nothing the caller needs.
void ignoreNotice(void*, const char*) {}

class PostgresConnection final : public Connection {
  public:
    explicit PostgresConnection(std::string conninfo) : conninfo_(std::move(conninfo)) { connect(); }

    ~PostgresConnection() override { PQfinish(conn_); }

    Dialect dialect() const override { return Dialect::Postgres; }

    using Connection::exec;

    // Repeats the base's default: defaults of virtual functions bind to the
    // static type, and internal calls here use this class.
    Result exec(std::string_view sql, std::span<const Value> params = {}) override {
        ensureConnected();
        const Statement statement = prepared(sql, params.size());
        if (statement.params != params.size()) {
            // The server would say "bind message supplies 1 parameters, but
            // prepared statement requires 2"; say it like SQLite does.
            throw Error(Error::Kind::Other, "statement has " + std::to_string(statement.params) +
                                                " placeholders but " + std::to_string(params.size()) +
                                                " parameters were given (in: " + excerpt(sql) + ")");
        }

        std::vector<const char*> values(params.size(), nullptr);
        for (size_t i = 0; i < params.size(); ++i) {
            if (!params[i]) {
                continue;
            }
            // Text parameters are NUL-terminated for libpq; anything after
            // an embedded NUL would be cut off silently.
            if (std::memchr(params[i]->data(), '\0', params[i]->size()) != nullptr) {
                throw Error(Error::Kind::Other,
                            "parameter $" + std::to_string(i + 1) + " contains a NUL byte");
            }
            values[i] = params[i]->c_str();
        }
        ResultPtr result(PQexecPrepared(conn_, statement.name.c_str(), static_cast<int>(params.size()),
                                        values.data(), nullptr, nullptr, 0));
        if (PQresultStatus(result.get()) == PGRES_EMPTY_QUERY) {
            throw Error(Error::Kind::Other, "exec(): empty SQL statement");  // As in SQLite.
        }
        if (!succeeded(result.get())) {
            const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
            if (state != nullptr && std::string_view(state) == "0A000") {
                // "cached plan must not change result type": the table
                // changed under the prepared statement. Prepare it afresh
                // next time.
                if (std::optional<Statement> stale = cache_.erase(sql)) {
                    pendingDeallocate_.push_back(std::move(stale->name));
                }
            }
            fail(result.get(), sql);
        }
        return toResult(result.get());
    }

    void execScript(std::string_view sql) override {
        ensureConnected();
        const std::string script(sql);
        ResultPtr result(PQexec(conn_, script.c_str()));
        if (!succeeded(result.get())) {
            fail(result.get(), sql);
        }
    }

    void begin() override {
        if (tx_ == TxState::Active) {
            throw Error(Error::Kind::Other, "begin(): a transaction is already open (they do not nest)");
        }
        ensureConnected();  // Throws while a lost transaction is unacknowledged.
        simple("BEGIN");
        tx_ = TxState::Active;
    }

    void commit() override {
        if (tx_ == TxState::None) {
            throw Error(Error::Kind::Other, "commit() without begin()");
        }
        if (tx_ == TxState::Lost) {
            tx_ = TxState::None;
            throw Error(Error::Kind::Transient,
                        "commit(): the PostgreSQL connection was lost during the transaction; nothing was "
                        "committed");
        }
        ResultPtr result(PQexec(conn_, "COMMIT"));
        if (!succeeded(result.get())) {
            const bool lost = connectionBad();
            tx_ = TxState::None;  // COMMIT ends the transaction whatever happens.
            if (lost) {
                dropConnection();
                throw Error(
                    Error::Kind::Transient,
                    "commit(): the PostgreSQL connection was lost during COMMIT; the outcome is unknown");
            }
            fail(result.get(), "COMMIT");
        }
        tx_ = TxState::None;
        // COMMIT of a transaction in which a statement failed "succeeds"
        // with the tag ROLLBACK; the caller must not believe it committed.
        if (std::string_view(PQcmdStatus(result.get())) == "ROLLBACK") {
            throw Error(Error::Kind::Other,
                        "commit(): PostgreSQL rolled the transaction back because a statement in it failed");
        }
    }

    void rollback() override {
        const TxState state = tx_;
        tx_ = TxState::None;
        if (state != TxState::Active || connectionBad()) {
            // Nothing to roll back, or the server already did when the
            // connection went away.
            return;
        }
        ResultPtr result(PQexec(conn_, "ROLLBACK"));
        if (!succeeded(result.get())) {
            if (connectionBad()) {
                dropConnection();
                return;
            }
            fail(result.get(), "ROLLBACK");
        }
    }

  private:
    struct Statement {
        std::string name;
        size_t params = 0;
    };

    enum class TxState {
        None,
        Active,
        // The connection died inside a transaction; see Connection::begin().
        Lost,
    };

    void connect() {
        // The conninfo is expanded in place of "dbname" and overrides the
        // keywords before it, so it can still set its own connect_timeout.
        const char* const keywords[] = {"connect_timeout", "dbname", nullptr};
        const char* const values[] = {kDefaultConnectTimeout, conninfo_.c_str(), nullptr};
        PGconn* conn = PQconnectdbParams(keywords, values, 1);
        if (conn == nullptr) {
            throw Error(Error::Kind::Transient, "cannot connect to PostgreSQL: out of memory");
        }
        if (PQstatus(conn) != CONNECTION_OK) {
            std::string reason = oneLine(PQerrorMessage(conn));
            PQfinish(conn);
            nextConnectAttempt_ = std::chrono::steady_clock::now() + kReconnectBackoff;
            lastConnectError_ = reason;
            throw Error(Error::Kind::Transient, "cannot connect to PostgreSQL: " + reason);
        }
        PQsetNoticeProcessor(conn, ignoreNotice, nullptr);
        // Values are UTF-8 throughout the server, whatever the server's or
        // the environment's default encoding is.
        if (PQsetClientEncoding(conn, "UTF8") != 0) {
            std::string reason = oneLine(PQerrorMessage(conn));
            PQfinish(conn);
            throw Error(Error::Kind::Other, "cannot set PostgreSQL client encoding to UTF8: " + reason);
        }
        conn_ = conn;
        lastConnectError_.clear();
    }

    void ensureConnected() {
        if (tx_ == TxState::Lost) {
            throw Error(Error::Kind::Transient,
                        "the PostgreSQL connection was lost during the transaction; call rollback()");
        }
        if (!connectionBad()) {
            flushDeallocations();
            return;
        }
        dropConnection();
        if (std::chrono::steady_clock::now() < nextConnectAttempt_) {
            throw Error(Error::Kind::Transient, "cannot connect to PostgreSQL: " + lastConnectError_);
        }
        connect();
    }

    bool connectionBad() const { return conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK; }

    // Prepared statements live in the server session, so they die with it.
    void dropConnection() {
        PQfinish(conn_);
        conn_ = nullptr;
        cache_.clear();
        pendingDeallocate_.clear();
        if (tx_ == TxState::Active) {
            tx_ = TxState::Lost;
        }
    }

    // Evicted statements are deallocated lazily, outside transactions: in a
    // transaction that a failed statement aborted, DEALLOCATE would fail too.
    void flushDeallocations() {
        if (pendingDeallocate_.empty() || PQtransactionStatus(conn_) != PQTRANS_IDLE) {
            return;
        }
        std::vector<std::string> names;
        names.swap(pendingDeallocate_);
        for (const std::string& name : names) {
            ResultPtr result(PQexec(conn_, ("DEALLOCATE " + name).c_str()));
            if (!succeeded(result.get())) {
                fail(result.get(), "DEALLOCATE");
            }
        }
    }

    Statement prepared(std::string_view sql, size_t paramCount) {
        if (Statement* cached = cache_.find(sql)) {
            return *cached;
        }
        Statement statement;
        statement.name = "xmppd_" + std::to_string(++statementCounter_);
        const std::string text(sql);
        ResultPtr result(
            PQprepare(conn_, statement.name.c_str(), text.c_str(), static_cast<int>(paramCount), nullptr));
        if (!succeeded(result.get())) {
            fail(result.get(), sql);
        }
        // Postgres accepts placeholders beyond the declared count, so ask
        // how many the statement really has (once per statement and session).
        ResultPtr description(PQdescribePrepared(conn_, statement.name.c_str()));
        if (!succeeded(description.get())) {
            fail(description.get(), sql);
        }
        statement.params = static_cast<size_t>(PQnparams(description.get()));
        if (std::optional<Statement> evicted = cache_.insert(text, statement)) {
            pendingDeallocate_.push_back(std::move(evicted->name));
        }
        return statement;
    }

    void simple(const char* sql) {
        ResultPtr result(PQexec(conn_, sql));
        if (!succeeded(result.get())) {
            fail(result.get(), sql);
        }
    }

    static bool succeeded(const PGresult* result) {
        if (result == nullptr) {
            return false;
        }
        switch (PQresultStatus(result)) {
            case PGRES_COMMAND_OK:
            case PGRES_TUPLES_OK:
            case PGRES_EMPTY_QUERY:
                return true;
            default:
                return false;
        }
    }

    [[noreturn]] void fail(const PGresult* result, std::string_view sql) {
        if (connectionBad()) {
            std::string reason =
                oneLine(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
            dropConnection();
            throw Error(Error::Kind::Transient, "PostgreSQL connection lost: " + reason);
        }
        if (result == nullptr) {
            // libpq could not build a result: out of memory.
            throw Error(Error::Kind::Transient, "PostgreSQL: " + oneLine(PQerrorMessage(conn_)));
        }
        const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
        const std::string_view sqlState = state != nullptr ? state : "";
        // The primary message only: DETAIL would copy row data (user names,
        // keys) into logs.
        std::string message =
            "PostgreSQL error " + std::string(sqlState) + ": " +
            (primary != nullptr ? std::string(primary) : oneLine(PQresultErrorMessage(result))) +
            " (in: " + excerpt(sql) + ")";
        throw Error(kindOfSqlState(sqlState), message);
    }

    static Result toResult(PGresult* pg) {
        Result result;
        const int rows = PQntuples(pg);
        const int columns = PQnfields(pg);
        result.rows.reserve(static_cast<size_t>(rows));
        for (int r = 0; r < rows; ++r) {
            Row& row = result.rows.emplace_back();
            row.values.reserve(static_cast<size_t>(columns));
            for (int c = 0; c < columns; ++c) {
                if (PQgetisnull(pg, r, c) != 0) {
                    row.values.emplace_back(std::nullopt);
                } else {
                    row.values.emplace_back(
                        std::string(PQgetvalue(pg, r, c), static_cast<size_t>(PQgetlength(pg, r, c))));
                }
            }
        }
        // PQcmdTuples also counts the rows of a SELECT; SQLite and the
        // documented meaning of `affected` count only changed rows.
        const std::string_view tag = PQcmdStatus(pg);
        if (startsWith(tag, "INSERT ") || startsWith(tag, "UPDATE ") || startsWith(tag, "DELETE ") ||
            startsWith(tag, "MERGE ")) {
            const std::string_view count = PQcmdTuples(pg);
            std::from_chars(count.data(), count.data() + count.size(), result.affected);
        }
        return result;
    }

    std::string conninfo_;
    PGconn* conn_ = nullptr;
    TxState tx_ = TxState::None;
    detail::StatementCache<Statement> cache_{kStatementCacheSize};  // by SQL text
    std::vector<std::string> pendingDeallocate_;
    uint64_t statementCounter_ = 0;
    std::chrono::steady_clock::time_point nextConnectAttempt_{};
    std::string lastConnectError_;
};

}  // namespace

std::unique_ptr<Connection> openPostgres(const std::string& conninfo) {
    return std::make_unique<PostgresConnection>(conninfo);
}

}  // namespace storage
