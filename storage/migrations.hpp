#pragma once

// Schema versions per module. Each module (the core "accounts", roster,
// offline, ...) owns its tables and a list of migrations that take them from
// one version to the next; the server runs them all at startup.

#include <span>
#include <string>
#include <string_view>

#include "storage/connection.hpp"

namespace storage {

struct Migration {
    std::string module;
    int version = 0;       // >= 1, strictly increasing within a module
    std::string sqlite;    // script for SQLite: ';'-separated statements
    std::string postgres;  // script for PostgreSQL
};

// Brings every module in `migrations` up to date. Versions are recorded in
// schema_version(module TEXT PRIMARY KEY, version INTEGER NOT NULL). Each
// migration newer than its module's recorded version runs in a transaction of
// its own, together with the version update, in the order given (so a module
// can list its migrations after those of modules it references); a failure
// rolls that migration back, keeps the ones before it, and throws. Running it
// again applies nothing new. Servers sharing one Postgres database may
// migrate concurrently: an advisory lock serialises them, and each migration
// re-reads the version under it.
//
// Throws Error{Other} without touching the database if a module's versions
// are not strictly increasing from 1 up. Returns the number of migrations
// applied.
int migrate(Connection& connection, std::span<const Migration> migrations);

// The recorded version of `module`, 0 if none (or no schema_version table).
int schemaVersion(Connection& connection, std::string_view module);

}  // namespace storage
