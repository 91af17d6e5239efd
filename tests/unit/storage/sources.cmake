# Storage unit tests, relative to tests/unit. Included by tests/unit's
# CMakeLists, which links them with Catch2's main and the `storage` library.
set(STORAGE_TEST_SOURCES
  storage/test_db.cpp
  storage/connection_test.cpp
  storage/migrations_test.cpp
  storage/accounts_test.cpp
  storage/pool_test.cpp
  storage/postgres_test.cpp
  storage/sqlite_test.cpp
)
