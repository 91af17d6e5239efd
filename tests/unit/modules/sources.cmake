# Module unit tests, relative to tests/unit. Included by tests/unit's
# CMakeLists, which links them with Catch2's main and xmppd_modules. The
# store tests reuse the two-backend fixture of storage/test_db.hpp.
set(MODULES_TEST_SOURCES
  modules/mam_store_test.cpp
  modules/mam_protocol_test.cpp
  modules/sms_register_test.cpp
)
