#include "storage/connection.hpp"

#include <charconv>

namespace storage {

std::string_view dialectName(Dialect dialect) {
    switch (dialect) {
        case Dialect::Sqlite:
            return "sqlite";
        case Dialect::Postgres:
            return "postgres";
    }
    return "unknown";
}

Error::Error(Kind kind, const std::string& message)
    : std::runtime_error(message), kind(kind), transient(kind == Kind::Transient) {}

const Value& Row::operator[](size_t column) const {
    if (column >= values.size()) {
        throw Error(Error::Kind::Other, "column " + std::to_string(column) + " out of range (row has " +
                                            std::to_string(values.size()) + " columns)");
    }
    return values[column];
}

std::string Row::text(size_t column) const {
    const Value& value = (*this)[column];
    return value ? *value : std::string();
}

int64_t Row::integer(size_t column) const {
    const Value& value = (*this)[column];
    if (!value) {
        throw Error(Error::Kind::Other, "column " + std::to_string(column) + " is NULL, expected an integer");
    }
    int64_t result = 0;
    const char* begin = value->data();
    const char* end = begin + value->size();
    auto [ptr, ec] = std::from_chars(begin, end, result);
    if (ec != std::errc() || ptr != end || begin == end) {
        throw Error(Error::Kind::Other,
                    "column " + std::to_string(column) + " is not an integer: '" + *value + "'");
    }
    return result;
}

Connection::~Connection() = default;

Result Connection::exec(std::string_view sql, std::initializer_list<Value> params) {
    return exec(sql, std::span<const Value>(params.begin(), params.size()));
}

Transaction::Transaction(Connection& connection) : connection_(connection) {
    connection_.begin();
}

Transaction::~Transaction() {
    if (done_) {
        return;
    }
    try {
        connection_.rollback();
    } catch (...) {
        // See the class comment: nothing useful can be done here.
    }
}

void Transaction::commit() {
    connection_.commit();
    done_ = true;
}

}  // namespace storage
