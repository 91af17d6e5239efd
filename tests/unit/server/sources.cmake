set(SERVER_TEST_SOURCES
  server/router_test.cpp
  server/config_test.cpp
  server/tls_engine_test.cpp
  server/sm_counters_test.cpp
  server/component_test.cpp
  server/component_session_test.cpp
)
