# Unit tests of the IM modules (blocking, vcard, private, last), relative to
# tests/unit. Included by tests/unit's CMakeLists; the store tests run on
# SQLite and PostgreSQL through storage/test_db.hpp.
set(IM_MODULES_TEST_SOURCES
  modules/im_test_accounts.cpp
  modules/blocking_store_test.cpp
  modules/blocklist_cache_test.cpp
  modules/vcard_test.cpp
  modules/private_store_test.cpp
  modules/last_store_test.cpp
)
