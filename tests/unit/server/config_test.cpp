#include <catch2/catch.hpp>

#include "server/config.hpp"
#include "server/server.hpp"

using namespace xmppd;

namespace {

const ModuleSchemas kSchemas{
    {"ping", {{"interval", OptionSpec::Type::Integer, "120", 5, 86400, "doc"}}},
    {"disco", {}},
};

const std::string kMinimal = "hosts: [example.com]\nlisten:\n  - port: 5222\n";

}  // namespace

TEST_CASE("a minimal config gets the defaults") {
    auto testling = parseConfig(kMinimal, "x.yml", kSchemas);
    CHECK(testling.hosts == std::vector<std::string>{"example.com"});
    CHECK(testling.storage.backend == "sqlite");
    CHECK(testling.limits.parser.maxStanzaBytes == 256 * 1024);
    REQUIRE(testling.listeners.size() == 1);
    CHECK(testling.listeners[0].starttlsRequired);
}

TEST_CASE("the shipped conf/xmppd.yml is valid") {
    auto testling = loadConfig(XMPPD_SOURCE_DIR "/conf/xmppd.yml", moduleSchemas());
    CHECK(testling.listeners.size() == 2);
    CHECK(testling.modules.size() >= 4);
}

TEST_CASE("an unknown key names the key and the line") {
    CHECK_THROWS_WITH(parseConfig(kMinimal + "limitz: {}\n", "x.yml", kSchemas),
                      Catch::Contains("limitz (line 4)") && Catch::Contains("unknown key"));
}

TEST_CASE("a bad value names the path, the line and the expectation") {
    std::string text = kMinimal + "modules:\n  ping:\n    interval: -3\n";
    CHECK_THROWS_WITH(parseConfig(text, "x.yml", kSchemas),
                      Catch::Contains("modules.ping.interval (line 6): expected integer >= 5"));
}

TEST_CASE("a wrong type is reported") {
    CHECK_THROWS_WITH(parseConfig(kMinimal + "limits:\n  max_stanza_bytes: lots\n", "x.yml", kSchemas),
                      Catch::Contains("limits.max_stanza_bytes (line 5): expected integer"));
}

TEST_CASE("an unknown module is reported with the known ones") {
    CHECK_THROWS_WITH(parseConfig(kMinimal + "modules:\n  pong: {}\n", "x.yml", kSchemas),
                      Catch::Contains("modules.pong") && Catch::Contains("known: disco, ping"));
}

TEST_CASE("invalid YAML is reported with its line") {
    CHECK_THROWS_WITH(parseConfig("hosts: [a\nlisten: ]\n", "x.yml", kSchemas),
                      Catch::Contains("invalid YAML"));
}

TEST_CASE("postgres without conninfo is refused") {
    CHECK_THROWS_WITH(parseConfig(kMinimal + "storage:\n  backend: postgres\n", "x.yml", kSchemas),
                      Catch::Contains("storage.postgres.conninfo"));
}
