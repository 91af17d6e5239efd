#include "storage/migrations.hpp"

#include <map>

namespace storage {
namespace {

constexpr std::string_view kCreateVersionTable =
    "CREATE TABLE IF NOT EXISTS schema_version ("
    "module TEXT PRIMARY KEY, "
    "version INTEGER NOT NULL)";

// Any constant works; this one spells "xmpp" and is unlikely to collide with
// another application's advisory locks in a shared database.
constexpr std::string_view kLockMigrations = "SELECT pg_advisory_xact_lock(2020437104)";

void validate(std::span<const Migration> migrations) {
    std::map<std::string_view, int> last;
    for (const Migration& migration : migrations) {
        if (migration.module.empty()) {
            throw Error(Error::Kind::Other, "migration without a module name");
        }
        int& previous = last[migration.module];
        if (migration.version <= previous) {
            throw Error(Error::Kind::Other, "migrations of module '" + migration.module +
                                                "' must have versions >= 1 in increasing order, got " +
                                                std::to_string(migration.version) + " after " +
                                                std::to_string(previous));
        }
        previous = migration.version;
    }
}

// Serialises concurrent migrators. SQLite needs nothing: begin() takes the
// write lock. Also creates the version table under that lock, because
// concurrent CREATE TABLE IF NOT EXISTS can still fail in Postgres.
void lockSchema(Connection& connection) {
    if (connection.dialect() == Dialect::Postgres) {
        connection.exec(kLockMigrations);
    }
    connection.exec(kCreateVersionTable);
}

int readVersion(Connection& connection, std::string_view module) {
    Result result =
        connection.exec("SELECT version FROM schema_version WHERE module = $1", {std::string(module)});
    return result.rows.empty() ? 0 : static_cast<int>(result.rows[0].integer(0));
}

}  // namespace

int migrate(Connection& connection, std::span<const Migration> migrations) {
    validate(migrations);
    int applied = 0;
    for (const Migration& migration : migrations) {
        Transaction transaction(connection);
        lockSchema(connection);
        // Read under the lock: another server may have migrated meanwhile.
        if (readVersion(connection, migration.module) >= migration.version) {
            transaction.commit();
            continue;
        }
        const std::string& script =
            connection.dialect() == Dialect::Sqlite ? migration.sqlite : migration.postgres;
        try {
            connection.execScript(script);
        } catch (const Error& e) {
            throw Error(e.kind, "migration " + migration.module + " v" + std::to_string(migration.version) +
                                    " failed: " + e.what());
        }
        connection.exec(
            "INSERT INTO schema_version (module, version) VALUES ($1, $2) "
            "ON CONFLICT (module) DO UPDATE SET version = excluded.version",
            {migration.module, std::to_string(migration.version)});
        transaction.commit();
        ++applied;
    }
    return applied;
}

int schemaVersion(Connection& connection, std::string_view module) {
    // Checked first so that asking never creates tables; the catalogs differ.
    const std::string_view exists =
        connection.dialect() == Dialect::Sqlite
            ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            : "SELECT COUNT(*) FROM pg_catalog.pg_class WHERE oid = to_regclass('schema_version')";
    if (connection.exec(exists).rows.at(0).integer(0) == 0) {
        return 0;
    }
    return readVersion(connection, module);
}

}  // namespace storage
