#pragma once

// The portable, synchronous SQL layer. Everything above this header (accounts,
// module tables, migrations) is written once against Connection; the backends
// in storage/sqlite and storage/postgres hide the dialect differences that are
// not in the SQL text itself.
//
// A Connection is not thread-safe: it belongs to exactly one storage thread
// (see storage/pool.hpp). I/O threads never touch one.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace storage {

enum class Dialect { Sqlite, Postgres };

std::string_view dialectName(Dialect dialect);

// Every failure of the storage layer is an Error. Callers decide what to do
// from `kind` alone; the message is for logs.
struct Error : std::runtime_error {
    enum class Kind {
        // The database is unreachable or busy (connection lost, server
        // restarting, SQLite locked, disk full). The operation did not
        // happen, or its outcome is unknown if it was a COMMIT; retrying later
        // may succeed. A Postgres connection reconnects on its next call.
        Transient,
        // A UNIQUE or PRIMARY KEY constraint rejected the statement. Inside a
        // transaction, the only portable next step is rollback(): Postgres
        // aborts the whole transaction, SQLite only the statement.
        UniqueViolation,
        // Everything else: SQL errors, other constraints, misuse of the API.
        // Retrying the same operation will fail the same way.
        Other,
    };

    Error(Kind kind, const std::string& message);

    // Both are fixed at construction so they can never disagree.
    const Kind kind;
    const bool transient;  // kind == Kind::Transient
};

inline bool isUniqueViolation(const Error& error) {
    return error.kind == Error::Kind::UniqueViolation;
}

// SQL NULL or the value as text. Integers travel as decimal text in both
// directions (std::to_string / Row::integer); binary data must be base64'd by
// the caller, because the text protocol of both backends is not 8-bit clean
// for arbitrary bytes (Postgres rejects NUL and invalid UTF-8 in text).
using Value = std::optional<std::string>;

struct Row {
    std::vector<Value> values;

    // All three throw Error{Other} when the column index is out of range.
    const Value& operator[](size_t column) const;
    // "" for NULL: for the many columns where NULL and empty mean the same.
    std::string text(size_t column) const;
    // Throws Error{Other} if the column is NULL or not a decimal integer.
    int64_t integer(size_t column) const;
};

struct Result {
    std::vector<Row> rows;
    // Rows inserted, updated or deleted by the statement; 0 for anything else.
    int64_t affected = 0;
};

class Connection {
  public:
    Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    virtual ~Connection();

    virtual Dialect dialect() const = 0;

    // Runs exactly one statement. Placeholders are $1, $2, ... in both
    // dialects; every placeholder needs a parameter and every parameter must
    // be used, so a statement behaves the same on both backends. Prepared
    // statements are cached per SQL text, so pass constant SQL and put all
    // variable data in parameters. Throws Error.
    virtual Result exec(std::string_view sql, std::span<const Value> params = {}) = 0;
    Result exec(std::string_view sql, std::initializer_list<Value> params);

    // Runs several ';'-separated statements without parameters (schema
    // scripts in migrations). Throws Error.
    virtual void execScript(std::string_view sql) = 0;

    // Transactions do not nest: begin() inside a transaction throws
    // Error{Other}. rollback() outside a transaction does nothing, so it is
    // always safe in cleanup paths. If a Postgres connection is lost inside a
    // transaction, every call but rollback() throws Error{Transient} until
    // rollback() acknowledges the loss; without that, the next statement
    // would silently run outside the transaction on the new connection.
    virtual void begin() = 0;
    virtual void commit() = 0;
    virtual void rollback() = 0;
};

// RAII transaction: begins in the constructor, rolls back in the destructor
// unless commit() succeeded. Rollback errors in the destructor are swallowed:
// the transaction is gone either way, and the error that caused the unwind is
// the one worth reporting.
class Transaction {
  public:
    explicit Transaction(Connection& connection);
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    ~Transaction();

    void commit();

  private:
    Connection& connection_;
    bool done_ = false;
};

}  // namespace storage
