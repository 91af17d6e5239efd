#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

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
    CHECK(testling.listeners.size() == 3);
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

TEST_CASE("a component listener defaults to loopback and takes components with secrets") {
    std::string text = kMinimal +
                       "  - port: 5347\n    module: component\n"
                       "components:\n  bot.example.com:\n    secret: s3cret\n";
    auto testling = parseConfig(text, "x.yml", kSchemas);
    REQUIRE(testling.listeners.size() == 2);
    CHECK(testling.listeners[1].module == "component");
    CHECK(testling.listeners[1].address == "127.0.0.1");
    CHECK_FALSE(testling.listeners[1].starttlsRequired);
    REQUIRE(testling.components.size() == 1);
    CHECK(testling.components[0].domain == "bot.example.com");
    CHECK(testling.components[0].secret == "s3cret");
}

TEST_CASE("a component's secret_file is read without its final newline") {
    std::string file = (std::filesystem::temp_directory_path() / "xmppd-component-secret-test.txt").string();
    {
        std::FILE* f = std::fopen(file.c_str(), "w");
        REQUIRE(f);
        std::fputs("from-a-file\n", f);
        std::fclose(f);
    }
    auto testling = parseConfig(kMinimal + "components:\n  irc.example.com:\n    secret_file: " + file + "\n",
                                "x.yml", kSchemas);
    REQUIRE(testling.components.size() == 1);
    CHECK(testling.components[0].secret == "from-a-file");
    std::remove(file.c_str());
}

TEST_CASE("a component's limits are read and checked") {
    auto testling = parseConfig(kMinimal +
                                    "components:\n  bot.example.com:\n    secret: s\n"
                                    "    max_stanza_bytes: 4096\n    bytes_per_second: 50000\n"
                                    "    connections_per_minute: 5\n",
                                "x.yml", kSchemas);
    REQUIRE(testling.components.size() == 1);
    CHECK(testling.components[0].maxStanzaBytes == 4096);
    CHECK(testling.components[0].bytesPerSecond == 50000);
    CHECK(testling.components[0].connectionsPerMinute == 5);
    auto defaults =
        parseConfig(kMinimal + "components:\n  bot.example.com:\n    secret: s\n", "x.yml", kSchemas);
    CHECK(defaults.components[0].maxStanzaBytes == 0);
    CHECK(defaults.components[0].bytesPerSecond == 0);
    CHECK(defaults.components[0].connectionsPerMinute == 30);
    CHECK_THROWS_WITH(
        parseConfig(kMinimal + "components:\n  bot.example.com:\n    secret: s\n"
                               "    bytes_per_second: -1\n",
                    "x.yml", kSchemas),
        Catch::Contains("components.bot.example.com.bytes_per_second (line 7): expected integer >= 0"));
}

TEST_CASE("component config errors name the key and the line") {
    CHECK_THROWS_WITH(parseConfig(kMinimal + "  - port: 5347\n    module: s2s\n", "x.yml", kSchemas),
                      Catch::Contains("listen[1].module (line 5): expected one of: c2s, component"));
    CHECK_THROWS_WITH(
        parseConfig(kMinimal + "components:\n  bot.example.com:\n    secrett: x\n", "x.yml", kSchemas),
        Catch::Contains("components.bot.example.com.secrett (line 6): unknown key"));
    CHECK_THROWS_WITH(
        parseConfig(kMinimal + "components:\n  bot.example.com: {}\n", "x.yml", kSchemas),
        Catch::Contains("components.bot.example.com (line 5): missing key 'secret' or 'secret_file'"));
    CHECK_THROWS_WITH(
        parseConfig(kMinimal + "components:\n  example.com:\n    secret: x\n", "x.yml", kSchemas),
        Catch::Contains("components.example.com (line 5)") && Catch::Contains("one of hosts"));
    CHECK_THROWS_WITH(
        parseConfig(kMinimal + "components:\n  bot.example.com:\n    secret_file: /nonexistent/secret\n",
                    "x.yml", kSchemas),
        Catch::Contains(
            "components.bot.example.com.secret_file (line 6): cannot read '/nonexistent/secret'"));
    CHECK_THROWS_WITH(
        parseConfig(kMinimal + "  - port: 5347\n    module: component\n    starttls_required: true\n",
                    "x.yml", kSchemas),
        Catch::Contains("listen[1].starttls_required (line 6)"));
}

TEST_CASE("an http listener is HTTPS on all addresses unless it says otherwise") {
    std::string text = kMinimal +
                       "  - port: 5443\n    module: http\n"
                       "  - port: 5280\n    module: http\n    address: 127.0.0.1\n    tls: false\n";
    auto testling = parseConfig(text, "x.yml", kSchemas);
    REQUIRE(testling.listeners.size() == 3);
    CHECK(testling.listeners[1].module == "http");
    CHECK(testling.listeners[1].address == "::");
    CHECK(testling.listeners[1].directTls);
    CHECK_FALSE(testling.listeners[1].starttlsRequired);
    CHECK(testling.listeners[2].address == "127.0.0.1");
    CHECK_FALSE(testling.listeners[2].directTls);
}

TEST_CASE("an http listener has no STARTTLS") {
    CHECK_THROWS_WITH(
        parseConfig(kMinimal + "  - port: 5443\n    module: http\n    starttls_required: true\n", "x.yml",
                    kSchemas),
        Catch::Contains("listen[1].starttls_required (line 6)") &&
            Catch::Contains("not available on an http listener"));
}

TEST_CASE("the http limits have defaults and take values") {
    auto defaults = parseConfig(kMinimal, "x.yml", kSchemas);
    CHECK(defaults.http.maxBodyBytes == 65536);
    CHECK(defaults.http.maxHeaderBytes == 8192);
    CHECK(defaults.http.requestTimeout == 30);
    CHECK(defaults.http.idleTimeout == 60);
    CHECK(defaults.http.maxConnections == 1000);
    auto testling = parseConfig(kMinimal +
                                    "http:\n  max_body_bytes: 1024\n  max_header_bytes: 4096\n"
                                    "  request_timeout: 5\n  idle_timeout: 7\n  max_connections: 3\n",
                                "x.yml", kSchemas);
    CHECK(testling.http.maxBodyBytes == 1024);
    CHECK(testling.http.maxHeaderBytes == 4096);
    CHECK(testling.http.requestTimeout == 5);
    CHECK(testling.http.idleTimeout == 7);
    CHECK(testling.http.maxConnections == 3);
}

TEST_CASE("http limit errors name the key and the line") {
    CHECK_THROWS_WITH(parseConfig(kMinimal + "http:\n  request_timeout: 0\n", "x.yml", kSchemas),
                      Catch::Contains("http.request_timeout (line 5): expected integer >= 1"));
    CHECK_THROWS_WITH(parseConfig(kMinimal + "http:\n  max_header_bytes: 10\n", "x.yml", kSchemas),
                      Catch::Contains("http.max_header_bytes (line 5): expected integer >= 1024"));
    CHECK_THROWS_WITH(parseConfig(kMinimal + "http:\n  max_bodybytes: 10\n", "x.yml", kSchemas),
                      Catch::Contains("http.max_bodybytes (line 5): unknown key"));
}
