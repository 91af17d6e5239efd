#pragma once

#include <memory>
#include <string>

#include "storage/connection.hpp"

namespace storage {

// Opens the SQLite database at `path`, creating the file if needed, set up for
// the server: WAL journal, synchronous=FULL (a COMMIT that returned is on disk
// and survives kill -9 or power loss), a busy timeout so another process
// holding the file (an admin tool) delays rather than fails us, and foreign
// keys enforced. Throws Error with the path and SQLite's reason.
std::unique_ptr<Connection> openSqlite(const std::string& path);

}  // namespace storage
