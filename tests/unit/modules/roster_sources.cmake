set(ROSTER_TEST_SOURCES
  modules/roster_subscription_test.cpp
)
