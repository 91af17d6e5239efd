#pragma once

#include <memory>
#include <string>

#include "storage/connection.hpp"

namespace storage {

// Connects to PostgreSQL with a libpq conninfo string ("host=... dbname=..."
// or a postgresql:// URI). A connect_timeout of 10 s applies unless the string
// sets its own. Throws Error{Transient} if the server cannot be reached now.
//
// After that, a lost connection makes the failing call throw Error{Transient}
// and the next call reconnects, so the server recovers when the database comes
// back. Failed reconnects are retried at most once a second per connection, so
// that while the database is down queued jobs fail fast instead of each
// waiting for a connect timeout.
std::unique_ptr<Connection> openPostgres(const std::string& conninfo);

}  // namespace storage
