#include "server/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "xmpp/jid.hpp"

namespace xmppd {

namespace {

std::string where(const std::string& path, const YAML::Node& node) {
    std::string out = path;
    if (node.Mark().line >= 0) {
        out += " (line " + std::to_string(node.Mark().line + 1) + ")";
    }
    return out;
}

[[noreturn]] void fail(const std::string& path, const YAML::Node& node, const std::string& expectation) {
    throw ConfigError(where(path, node) + ": " + expectation);
}

std::string join(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

// Rejects keys that the schema does not know (typos must not pass silently).
void checkKeys(const YAML::Node& map, const std::string& path, const std::set<std::string>& allowed) {
    if (!map.IsMap()) {
        fail(path.empty() ? "top level" : path, map, "expected a mapping");
    }
    for (const auto& kv : map) {
        auto key = kv.first.as<std::string>();
        if (!allowed.count(key)) {
            std::string list;
            for (const auto& a : allowed) {
                list += (list.empty() ? "" : ", ") + a;
            }
            fail(join(path, key), kv.first, "unknown key (expected one of: " + list + ")");
        }
    }
}

int64_t asInteger(const YAML::Node& n, const std::string& path, int64_t min, int64_t max = INT64_MAX) {
    int64_t v = 0;
    try {
        if (!n.IsScalar()) {
            throw YAML::Exception(n.Mark(), "not scalar");
        }
        v = n.as<int64_t>();
    } catch (const YAML::Exception&) {
        fail(path, n, "expected integer" + (min > INT64_MIN ? " >= " + std::to_string(min) : std::string()));
    }
    if (v < min || v > max) {
        std::string range = "expected integer >= " + std::to_string(min);
        if (max != INT64_MAX) {
            range += " and <= " + std::to_string(max);
        }
        fail(path, n, range);
    }
    return v;
}

bool asBool(const YAML::Node& n, const std::string& path) {
    try {
        if (!n.IsScalar()) {
            throw YAML::Exception(n.Mark(), "not scalar");
        }
        return n.as<bool>();
    } catch (const YAML::Exception&) {
        fail(path, n, "expected true or false");
    }
}

std::string asString(const YAML::Node& n, const std::string& path, bool allowEmpty = false) {
    if (!n.IsScalar()) {
        fail(path, n, "expected a string");
    }
    auto s = n.as<std::string>();
    if (s.empty() && !allowEmpty) {
        fail(path, n, "expected a non-empty string");
    }
    return s;
}

void parseListeners(const YAML::Node& list, Config& cfg) {
    if (!list.IsSequence()) {
        fail("listen", list, "expected a list of listeners");
    }
    size_t i = 0;
    for (const auto& l : list) {
        std::string path = "listen[" + std::to_string(i++) + "]";
        checkKeys(l, path, {"port", "address", "module", "tls", "starttls_required"});
        ListenerConfig lc;
        if (l["module"]) {
            lc.module = asString(l["module"], path + ".module");
            if (lc.module != "c2s" && lc.module != "component" && lc.module != "http") {
                fail(path + ".module", l["module"], "expected one of: c2s, component, http");
            }
        }
        if (lc.module == "http") {
            // HTTPS unless `tls: false` (plain HTTP behind a TLS-terminating proxy).
            lc.directTls = true;
            lc.starttlsRequired = false;
            if (l["starttls_required"]) {
                fail(path + ".starttls_required", l["starttls_required"],
                     "not available on an http listener (use tls: true or false)");
            }
        }
        if (lc.module == "component") {
            // XEP-0114 has no STARTTLS and the secret is the only credential:
            // loopback unless the operator says otherwise.
            lc.address = "127.0.0.1";
            lc.starttlsRequired = false;
            if (l["starttls_required"]) {
                fail(path + ".starttls_required", l["starttls_required"],
                     "not available on a component listener (use tls: true for direct TLS)");
            }
        }
        if (!l["port"]) {
            fail(path, l, "missing key 'port'");
        }
        lc.port = static_cast<uint16_t>(asInteger(l["port"], path + ".port", 0, 65535));
        if (l["address"]) {
            lc.address = asString(l["address"], path + ".address");
        }
        if (l["tls"]) {
            lc.directTls = asBool(l["tls"], path + ".tls");
        }
        if (l["starttls_required"]) {
            lc.starttlsRequired = asBool(l["starttls_required"], path + ".starttls_required");
        }
        cfg.listeners.push_back(lc);
    }
}

std::string readSecretFile(const std::string& file, const std::string& path, const YAML::Node& node) {
    std::ifstream in(file);
    if (!in) {
        fail(path, node, "cannot read '" + file + "'");
    }
    std::stringstream buf;
    buf << in.rdbuf();
    std::string secret = buf.str();
    while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) {
        secret.pop_back();  // the file's final newline is not part of the secret
    }
    if (secret.empty()) {
        fail(path, node, "'" + file + "' holds no secret");
    }
    return secret;
}

void parseComponents(const YAML::Node& map, Config& cfg) {
    if (!map.IsMap()) {
        fail("components", map, "expected a mapping of component domains to {secret | secret_file}");
    }
    for (const auto& kv : map) {
        auto name = kv.first.as<std::string>();
        std::string path = "components." + name;
        auto domain = xmpp::prepDomainpart(name);
        if (!domain) {
            fail(path, kv.first, "expected a domain name");
        }
        if (std::find(cfg.hosts.begin(), cfg.hosts.end(), *domain) != cfg.hosts.end()) {
            fail(path, kv.first, "is one of hosts; a component needs a domain of its own");
        }
        for (const auto& c : cfg.components) {
            if (c.domain == *domain) {
                fail(path, kv.first, "declared twice");
            }
        }
        const YAML::Node& v = kv.second;
        checkKeys(
            v, path,
            {"secret", "secret_file", "max_stanza_bytes", "bytes_per_second", "connections_per_minute"});
        ComponentConfig cc;
        cc.domain = *domain;
        if (v["max_stanza_bytes"]) {
            cc.maxStanzaBytes = static_cast<size_t>(
                asInteger(v["max_stanza_bytes"], path + ".max_stanza_bytes", 1024, 64 << 20));
        }
        if (v["bytes_per_second"]) {
            cc.bytesPerSecond = static_cast<size_t>(
                asInteger(v["bytes_per_second"], path + ".bytes_per_second", 0, int64_t(1) << 40));
        }
        if (v["connections_per_minute"]) {
            cc.connectionsPerMinute = static_cast<int>(
                asInteger(v["connections_per_minute"], path + ".connections_per_minute", 0, 100000));
        }
        if (v["secret"] && v["secret_file"]) {
            fail(path, v, "expected either secret or secret_file, not both");
        } else if (v["secret"]) {
            cc.secret = asString(v["secret"], path + ".secret");
        } else if (v["secret_file"]) {
            cc.secret = readSecretFile(asString(v["secret_file"], path + ".secret_file"),
                                       path + ".secret_file", v["secret_file"]);
        } else {
            fail(path, v, "missing key 'secret' or 'secret_file'");
        }
        cfg.components.push_back(std::move(cc));
    }
}

void parseHttp(const YAML::Node& h, Config& cfg) {
    checkKeys(h, "http",
              {"max_body_bytes", "max_header_bytes", "request_timeout", "idle_timeout", "max_connections"});
    auto& http = cfg.http;
    if (h["max_body_bytes"]) {
        http.maxBodyBytes =
            static_cast<size_t>(asInteger(h["max_body_bytes"], "http.max_body_bytes", 0, 64 << 20));
    }
    if (h["max_header_bytes"]) {
        http.maxHeaderBytes =
            static_cast<size_t>(asInteger(h["max_header_bytes"], "http.max_header_bytes", 1024, 1 << 20));
    }
    if (h["request_timeout"]) {
        http.requestTimeout =
            static_cast<int>(asInteger(h["request_timeout"], "http.request_timeout", 1, 3600));
    }
    if (h["idle_timeout"]) {
        http.idleTimeout = static_cast<int>(asInteger(h["idle_timeout"], "http.idle_timeout", 1, 3600));
    }
    if (h["max_connections"]) {
        http.maxConnections =
            static_cast<size_t>(asInteger(h["max_connections"], "http.max_connections", 1, 1000000));
    }
}

ModuleOptions parseModuleOptions(const YAML::Node& node, const std::string& path,
                                 const std::vector<OptionSpec>& specs) {
    ModuleOptions opts;
    std::set<std::string> allowed;
    for (const auto& s : specs) {
        allowed.insert(s.key);
        opts.set(s.key, s.defaultValue);
    }
    if (node.IsNull()) {
        return opts;
    }
    checkKeys(node, path, allowed);
    for (const auto& s : specs) {
        const YAML::Node v = node[s.key];
        if (!v) {
            continue;
        }
        std::string p = join(path, s.key);
        switch (s.type) {
            case OptionSpec::Type::Integer:
                opts.set(s.key, std::to_string(asInteger(v, p, s.min, s.max)));
                break;
            case OptionSpec::Type::Boolean:
                opts.set(s.key, asBool(v, p) ? "true" : "false");
                break;
            case OptionSpec::Type::String:
                opts.set(s.key, asString(v, p, true));
                break;
        }
    }
    return opts;
}

Config parseRoot(const YAML::Node& root, const std::string& path, const ModuleSchemas& schemas) {
    Config cfg;
    cfg.path = path;
    checkKeys(root, "",
              {"hosts", "loglevel", "log_file", "data_dir", "workers", "tls", "storage", "listen", "control",
               "auth", "stream_management", "limits", "http", "modules", "components"});
    if (!root["hosts"] || !root["hosts"].IsSequence() || root["hosts"].size() == 0) {
        fail("hosts", root["hosts"] ? root["hosts"] : root, "expected a non-empty list of domain names");
    }
    for (const auto& h : root["hosts"]) {
        cfg.hosts.push_back(asString(h, "hosts[]"));
    }
    if (root["loglevel"]) {
        cfg.logLevel = asString(root["loglevel"], "loglevel");
        static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error"};
        if (!levels.count(cfg.logLevel)) {
            fail("loglevel", root["loglevel"], "expected one of: trace, debug, info, warn, error");
        }
    }
    if (root["log_file"]) {
        cfg.logFile = asString(root["log_file"], "log_file", true);
    }
    if (root["data_dir"]) {
        cfg.dataDir = asString(root["data_dir"], "data_dir");
    }
    if (root["workers"]) {
        cfg.workers = static_cast<int>(asInteger(root["workers"], "workers", 0, 256));
    }
    if (cfg.workers == 0) {
        cfg.workers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    }
    if (auto tls = root["tls"]) {
        checkKeys(tls, "tls", {"certfile", "keyfile"});
        if (tls["certfile"]) {
            cfg.tls.certFile = asString(tls["certfile"], "tls.certfile");
        }
        if (tls["keyfile"]) {
            cfg.tls.keyFile = asString(tls["keyfile"], "tls.keyfile");
        }
    }
    if (auto st = root["storage"]) {
        checkKeys(st, "storage", {"backend", "sqlite", "postgres", "queue_limit"});
        if (st["backend"]) {
            cfg.storage.backend = asString(st["backend"], "storage.backend");
            if (cfg.storage.backend != "sqlite" && cfg.storage.backend != "postgres") {
                fail("storage.backend", st["backend"], "expected one of: sqlite, postgres");
            }
        }
        if (auto s = st["sqlite"]) {
            checkKeys(s, "storage.sqlite", {"path"});
            if (s["path"]) {
                cfg.storage.sqlitePath = asString(s["path"], "storage.sqlite.path");
            }
        }
        if (auto p = st["postgres"]) {
            checkKeys(p, "storage.postgres", {"conninfo", "pool_size"});
            if (p["conninfo"]) {
                cfg.storage.pgConninfo = asString(p["conninfo"], "storage.postgres.conninfo");
            }
            if (p["pool_size"]) {
                cfg.storage.pgPoolSize =
                    static_cast<int>(asInteger(p["pool_size"], "storage.postgres.pool_size", 1, 256));
            }
        }
        if (st["queue_limit"]) {
            cfg.storage.queueLimit =
                static_cast<size_t>(asInteger(st["queue_limit"], "storage.queue_limit", 1));
        }
    }
    if (cfg.storage.backend == "postgres" && cfg.storage.pgConninfo.empty()) {
        fail("storage.postgres.conninfo", root["storage"],
             "expected a libpq connection string for backend postgres");
    }
    if (!root["listen"]) {
        fail("listen", root, "missing key 'listen'");
    }
    parseListeners(root["listen"], cfg);
    if (auto c = root["control"]) {
        checkKeys(c, "control", {"socket"});
        if (c["socket"]) {
            cfg.controlSocket = asString(c["socket"], "control.socket");
        }
    }
    if (auto a = root["auth"]) {
        checkKeys(a, "auth", {"scram_iterations", "allow_plain"});
        if (a["scram_iterations"]) {
            cfg.auth.scramIterations =
                static_cast<int>(asInteger(a["scram_iterations"], "auth.scram_iterations", 4096, 10000000));
        }
        if (a["allow_plain"]) {
            cfg.auth.allowPlain = asBool(a["allow_plain"], "auth.allow_plain");
        }
    }
    if (auto l = root["limits"]) {
        checkKeys(l, "limits",
                  {"max_stanza_bytes", "max_depth", "max_attributes", "max_outbound_bytes", "idle_timeout",
                   "login_timeout"});
        auto& lim = cfg.limits;
        if (l["max_stanza_bytes"]) {
            lim.parser.maxStanzaBytes = static_cast<size_t>(
                asInteger(l["max_stanza_bytes"], "limits.max_stanza_bytes", 1024, 64 << 20));
        }
        if (l["max_depth"]) {
            lim.parser.maxDepth =
                static_cast<unsigned>(asInteger(l["max_depth"], "limits.max_depth", 2, 1000));
        }
        if (l["max_attributes"]) {
            lim.parser.maxAttributes =
                static_cast<unsigned>(asInteger(l["max_attributes"], "limits.max_attributes", 4, 10000));
        }
        if (l["max_outbound_bytes"]) {
            lim.maxOutboundBytes =
                static_cast<size_t>(asInteger(l["max_outbound_bytes"], "limits.max_outbound_bytes", 4096));
        }
        if (l["idle_timeout"]) {
            lim.idleTimeout =
                static_cast<int>(asInteger(l["idle_timeout"], "limits.idle_timeout", 1, 86400 * 7));
        }
        if (l["login_timeout"]) {
            lim.loginTimeout =
                static_cast<int>(asInteger(l["login_timeout"], "limits.login_timeout", 1, 3600));
        }
    }
    if (auto sm = root["stream_management"]) {
        checkKeys(sm, "stream_management", {"enabled", "resume_timeout", "max_queue", "ack_grace"});
        if (sm["enabled"]) {
            cfg.streamManagement.enabled = asBool(sm["enabled"], "stream_management.enabled");
        }
        if (sm["resume_timeout"]) {
            cfg.streamManagement.resumeTimeout = static_cast<int>(
                asInteger(sm["resume_timeout"], "stream_management.resume_timeout", 0, 86400));
        }
        if (sm["ack_grace"]) {
            cfg.streamManagement.ackGrace =
                static_cast<int>(asInteger(sm["ack_grace"], "stream_management.ack_grace", 1, 3600));
        }
        if (sm["max_queue"]) {
            cfg.streamManagement.maxQueue =
                static_cast<size_t>(asInteger(sm["max_queue"], "stream_management.max_queue", 10, 1000000));
        }
    }
    if (auto h = root["http"]) {
        parseHttp(h, cfg);
    }
    if (auto c = root["components"]) {
        parseComponents(c, cfg);
    }
    if (auto m = root["modules"]) {
        if (!m.IsMap()) {
            fail("modules", m, "expected a mapping of module names to options");
        }
        for (const auto& kv : m) {
            auto name = kv.first.as<std::string>();
            auto it = schemas.find(name);
            if (it == schemas.end()) {
                std::string list;
                for (const auto& [n, _] : schemas) {
                    list += (list.empty() ? "" : ", ") + n;
                }
                fail("modules." + name, kv.first, "unknown module (known: " + list + ")");
            }
            cfg.modules.emplace_back(name, parseModuleOptions(kv.second, "modules." + name, it->second));
        }
    }
    return cfg;
}

}  // namespace

int64_t ModuleOptions::integer(const std::string& key) const {
    return std::stoll(values_.at(key));
}
bool ModuleOptions::boolean(const std::string& key) const {
    return values_.at(key) == "true";
}
const std::string& ModuleOptions::string(const std::string& key) const {
    return values_.at(key);
}

Config parseConfig(const std::string& yamlText, const std::string& path, const ModuleSchemas& schemas) {
    YAML::Node root;
    try {
        root = YAML::Load(yamlText);
    } catch (const YAML::ParserException& e) {
        throw ConfigError(path + " (line " + std::to_string(e.mark.line + 1) + "): invalid YAML: " + e.msg);
    }
    return parseRoot(root, path, schemas);
}

Config loadConfig(const std::string& path, const ModuleSchemas& schemas) {
    std::ifstream in(path);
    if (!in) {
        throw ConfigError(path + ": cannot open configuration file");
    }
    std::stringstream buf;
    buf << in.rdbuf();
    return parseConfig(buf.str(), path, schemas);
}

}  // namespace xmppd
