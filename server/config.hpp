#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "xmpp/stream_parser.hpp"

namespace YAML {
class Node;
}

namespace xmppd {

// A configuration error names the key path, the line and what was expected,
// e.g. "modules.ping.interval (line 42): expected integer >= 1".
struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct ListenerConfig {
    std::string address = "::";
    uint16_t port = 0;
    std::string module = "c2s";    // c2s | component (XEP-0114) | http
    bool directTls = false;        // XEP-0368: TLS from the first byte (HTTPS on http listeners)
    bool starttlsRequired = true;  // RFC 6120 §5.3.1: mandatory-to-negotiate
};

// An external component (XEP-0114): the domain it serves and the shared
// secret of its handshake (from `secret`, or read from `secret_file`).
struct ComponentConfig {
    std::string domain;
    std::string secret;
    size_t maxStanzaBytes = 0;      // 0: limits.max_stanza_bytes
    size_t bytesPerSecond = 0;      // inbound rate (a shaper); 0: unlimited
    int connectionsPerMinute = 30;  // streams naming the domain; 0: unlimited
};

struct TlsConfig {
    std::string certFile;
    std::string keyFile;
};

struct StorageConfig {
    std::string backend = "sqlite";  // sqlite | postgres
    std::string sqlitePath = "data/xmppd.sqlite";
    std::string pgConninfo;
    int pgPoolSize = 4;
    size_t queueLimit = 10000;
};

struct LimitsConfig {
    xmpp::ParserLimits parser;
    size_t maxOutboundBytes = 1024 * 1024;
    int idleTimeout = 300;  // seconds
    int loginTimeout = 60;  // seconds
};

// XEP-0198 stream management.
struct StreamManagementConfig {
    bool enabled = true;
    int resumeTimeout = 300;  // seconds a lost session waits for a resumption
    size_t maxQueue = 1000;   // unacknowledged stanzas before <policy-violation/>
    int ackGrace = 2;         // seconds a device has to ack a message before a durable copy is made
};

// Limits of the HTTP listeners (`http:`), shared by all of them.
struct HttpConfig {
    size_t maxBodyBytes = 64 * 1024;   // a larger request body is answered 413
    size_t maxHeaderBytes = 8 * 1024;  // larger request headers are answered 431
    int requestTimeout = 30;           // seconds from a request's first byte (or the connection) to its end
    int idleTimeout = 60;              // seconds a keep-alive connection may wait for its next request
    size_t maxConnections = 1000;      // open HTTP connections, all listeners; beyond it new ones are closed
};

struct AuthConfig {
    int scramIterations = 4096;
    bool allowPlain = true;
};

// One option of a module, declared by the module (key, type, default, range,
// doc) and validated once at start.
struct OptionSpec {
    enum class Type { Integer, Boolean, String };
    std::string key;
    Type type = Type::String;
    std::string defaultValue;
    int64_t min = 0;
    int64_t max = INT64_MAX;
    std::string doc;
};

// A module's validated options: every declared key has a value.
class ModuleOptions {
  public:
    int64_t integer(const std::string& key) const;
    bool boolean(const std::string& key) const;
    const std::string& string(const std::string& key) const;
    void set(const std::string& key, std::string value) { values_[key] = std::move(value); }

  private:
    std::map<std::string, std::string> values_;
};

struct Config {
    std::string path;
    std::vector<std::string> hosts;
    std::string logLevel = "info";
    std::string logFile;  // empty: stderr. SIGHUP reopens it (logrotate).
    std::string dataDir = "data";
    int workers = 0;
    TlsConfig tls;
    StorageConfig storage;
    std::vector<ListenerConfig> listeners;
    std::string controlSocket = "data/xmppd.ctl";
    AuthConfig auth;
    LimitsConfig limits;
    StreamManagementConfig streamManagement;
    HttpConfig http;
    std::vector<ComponentConfig> components;
    // Module name → its options, in the order of the file. A module is
    // enabled when its key is present under `modules:`.
    std::vector<std::pair<std::string, ModuleOptions>> modules;
};

// The option schema of each known module, by module name; supplied by the
// composition root so that config.cpp knows no module.
using ModuleSchemas = std::map<std::string, std::vector<OptionSpec>>;

// Loads and validates; throws ConfigError with key path and line.
Config loadConfig(const std::string& path, const ModuleSchemas& schemas);
Config parseConfig(const std::string& yamlText, const std::string& path, const ModuleSchemas& schemas);

}  // namespace xmppd
