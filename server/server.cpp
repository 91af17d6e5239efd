#include "server/server.hpp"

#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <fmt/ranges.h>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "server/accounts.hpp"
#include "server/admin_commands.hpp"
#include "server/c2s/c2s_service.hpp"
#include "server/component/component_commands.hpp"
#include "server/component/component_service.hpp"
#include "server/hooks.hpp"
#include "server/http/health.hpp"
#include "server/module_host.hpp"
#include "server/net/http_listener.hpp"
#include "server/net/io_runtime.hpp"
#include "server/net/tls.hpp"
#include "server/router.hpp"
#include "storage/accounts.hpp"
#include "storage/migrations.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/sasl/crypto.hpp"
#include "xmpp/sasl/scram.hpp"

#ifndef XMPPD_VERSION
#define XMPPD_VERSION "0.1.0"
#endif

namespace xmppd {

namespace {

// A file sink that can reopen its file under its own lock, so a SIGHUP from
// logrotate never races with workers that are logging.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit ReopenableFileSink(std::string path) : path_(std::move(path)) { file_.open(path_, false); }
    void reopen() {
        std::lock_guard lock(mutex_);
        file_.close();
        file_.open(path_, false);
    }

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t formatted;
        formatter_->format(msg, formatted);
        file_.write(formatted);
    }
    void flush_() override { file_.flush(); }

  private:
    std::string path_;
    spdlog::details::file_helper file_;
};

std::shared_ptr<ReopenableFileSink> gFileSink;

}  // namespace

void reopenLogFile(const std::string& path) {
    if (gFileSink) {
        gFileSink->reopen();
        return;
    }
    // First call, before any worker runs: switch the logger to the file.
    gFileSink = std::make_shared<ReopenableFileSink>(path);
    gFileSink->set_pattern("%Y-%m-%d %H:%M:%S.%e %l %v");
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.clear();
    sinks.push_back(gFileSink);
}

namespace {

// RFC 5802 §5.1: an unknown user must look like a known one. The fake salt
// is derived from a server secret; keep it across restarts so the salt for a
// given unknown name does not change (which would give the name away).
void loadUnknownUserSaltKey(const std::string& dataDir) {
    auto path = std::filesystem::path(dataDir) / "scram-unknown-user.key";
    std::string key;
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
        char buf[64];
        size_t n = std::fread(buf, 1, sizeof buf, f);
        std::fclose(f);
        key.assign(buf, n);
    }
    if (key.size() < 32) {
        key = xmpp::sasl::randomBytes(32);
        if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
            std::fwrite(key.data(), 1, key.size(), f);
            std::fclose(f);
            std::filesystem::permissions(
                path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        }
    }
    xmpp::sasl::ScramServer::setUnknownUserSaltKey(key);
}

}  // namespace

ModuleSchemas moduleSchemas() {
    ModuleSchemas out;
    for (const auto& d : moduleRegistry()) {
        out[d.name] = d.options;
    }
    return out;
}

struct Server::Impl {
    Config config;
    ServerInfo info;
    Hooks hooks;
    std::unique_ptr<storage::Pool> pool;
    std::unique_ptr<Router> router;
    std::unique_ptr<Accounts> accounts;
    std::unique_ptr<ModuleHost> modules;
    std::unique_ptr<TlsContext> tls;
    std::unique_ptr<IoRuntime> io;
    std::unique_ptr<C2sService> c2s;
    std::unique_ptr<ComponentService> components;
    std::unique_ptr<HttpService> http;

    explicit Impl(Config c) : config(std::move(c)) {}
};

Server::Server(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Server::~Server() = default;

void Server::start() {
    auto& s = *impl_;
    const Config& cfg = s.config;
    s.info.version = XMPPD_VERSION;
    s.info.hosts = cfg.hosts;
    s.info.startedAt =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::error_code ec;
    std::filesystem::create_directories(cfg.dataDir, ec);
    loadUnknownUserSaltKey(cfg.dataDir);

    storage::PoolConfig pc;
    pc.backend = cfg.storage.backend == "postgres" ? storage::Dialect::Postgres : storage::Dialect::Sqlite;
    pc.sqlitePath = cfg.storage.sqlitePath;
    pc.pgConninfo = cfg.storage.pgConninfo;
    pc.pgPoolSize = cfg.storage.pgPoolSize;
    pc.queueLimit = cfg.storage.queueLimit;
    if (pc.backend == storage::Dialect::Sqlite) {
        auto parent = std::filesystem::path(pc.sqlitePath).parent_path();
        if (!parent.empty()) {
            std::filesystem::create_directories(parent, ec);
        }
    }
    try {
        s.pool = storage::Pool::open(pc);
        s.pool->runSync([](storage::Connection& c) { storage::migrate(c, storage::accounts::migrations()); });
    } catch (const storage::Error& e) {
        throw std::runtime_error(std::string("storage (") + cfg.storage.backend + "): " + e.what());
    }
    spdlog::info("storage: {} ready",
                 cfg.storage.backend == "postgres" ? "postgres" : cfg.storage.sqlitePath);

    s.router = std::make_unique<Router>(cfg.hosts, s.hooks);
    std::vector<std::string> componentDomains;
    for (const auto& c : cfg.components) {
        componentDomains.push_back(c.domain);
    }
    s.router->setComponentDomains(componentDomains);
    s.accounts = std::make_unique<Accounts>(*s.pool, s.hooks, cfg.hosts, cfg.auth.scramIterations);

    // The legacy session establishment iq (RFC 3921 §3, optional since RFC 6121):
    // answered with an empty result for clients that still send it.
    for (auto scope : {IqScope::Server, IqScope::Account}) {
        s.router->addIqHandler(scope, std::string(xmpp::ns::kSession), "core",
                               [](const IqRequest&, const IqResponder& r) { r.result(); });
    }

    s.modules = std::make_unique<ModuleHost>(s.info, s.hooks, *s.router, *s.accounts, *s.pool);
    s.modules->start(cfg);
    s.modules->httpRoutes().add("core", healthRoute(s.info.version));

    if (!cfg.tls.certFile.empty()) {
        s.tls = TlsContext::load(cfg.tls.certFile, cfg.tls.keyFile);
    } else {
        for (const auto& l : cfg.listeners) {
            if (l.directTls || l.starttlsRequired) {
                throw std::runtime_error("listener on port " + std::to_string(l.port) +
                                         " needs TLS but tls.certfile is not set");
            }
        }
    }

    s.io = std::make_unique<IoRuntime>(cfg.workers);
    s.c2s =
        std::make_unique<C2sService>(cfg, *s.router, *s.accounts, s.hooks, s.tls.get(), s.io->workerCount());
    s.c2s->setKeepalive(s.modules->keepalive());
    s.c2s->setStreamFeatures(s.modules->streamFeatures());
    s.c2s->setPreAuthIqs(s.modules->preAuthIqs());
    s.components = std::make_unique<ComponentService>(cfg, *s.router, s.io->workerCount());
    s.http = std::make_unique<HttpService>(cfg.http, s.modules->httpRoutes());

    registerCoreCommands(*s.modules,
                         AdminContext{cfg, s.info, *s.router, *s.accounts, *s.pool, *s.io, *s.c2s});
    registerComponentCommands(*s.modules, *s.router);

    for (const auto& l : cfg.listeners) {
        if (l.module == "http") {
            uint16_t port = s.http->listen(*s.io, l, cfg.tls);
            spdlog::info("listening on [{}]:{} (http, {})", l.address, port,
                         l.directTls ? "HTTPS" : "plain HTTP");
            continue;
        }
        const ListenerConfig* lc = &l;
        IoRuntime::AcceptFn onAccept;
        if (l.module == "component") {
            onAccept = [comps = s.components.get()](Worker& w, std::shared_ptr<Transport> t) {
                comps->accept(w, std::move(t));
            };
        } else {
            onAccept = [c2s = s.c2s.get(), lc](Worker& w, std::shared_ptr<Transport> t) {
                c2s->accept(w, std::move(t), *lc);
            };
        }
        uint16_t port = s.io->listen(l, s.tls.get(), cfg.limits.maxOutboundBytes, std::move(onAccept));
        spdlog::info("listening on [{}]:{} ({}{})", l.address, port, l.module,
                     l.directTls ? ", direct TLS" : (s.tls && l.module == "c2s" ? ", STARTTLS" : ", no TLS"));
    }
    s.io->listenControl(cfg.controlSocket,
                        [mods = s.modules.get()](std::vector<std::string> args, AdminReply reply) {
                            dispatchCommand(mods->commands(), args, std::move(reply));
                        });
    spdlog::info("control socket {}", cfg.controlSocket);
    s.io->every(std::chrono::seconds(1), [c2s = s.c2s.get(), comps = s.components.get()](Worker& w) {
        c2s->tick(w);
        comps->tick(w);
    });
}

void Server::run() {
    auto& s = *impl_;
    s.io->onSignal([&s](int sig) {
        if (sig == SIGHUP) {
            // Reopen the log file (logrotate moved it). On stderr there is
            // nothing to reopen. Config reload comes with live reload.
            spdlog::default_logger()->flush();
            if (!s.config.logFile.empty()) {
                try {
                    reopenLogFile(s.config.logFile);
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "xmppd: cannot reopen %s: %s\n", s.config.logFile.c_str(), e.what());
                }
            }
            spdlog::info("SIGHUP: log reopened");
            return;
        }
        spdlog::info("signal {}: closing all streams", sig);
        s.io->closeListeners();
        for (size_t i = 0; i < s.io->workerCount(); ++i) {
            Worker& w = s.io->worker(i);
            w.post([&s, &w] {
                s.http->shutdownWorker(w);
                s.components->shutdownWorker(w);
                s.c2s->shutdownWorker(w);
            });
        }
        // Give the streams a moment to flush their closing tags.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (s.c2s->liveSessions() + s.components->liveSessions() + s.http->liveConnections() > 0 &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        s.io->stop();
    });
    spdlog::info("xmppd {} started for {}", s.info.version, fmt::join(s.config.hosts, ", "));
    s.io->run();
    s.modules->stop();
    s.http.reset();
    s.components.reset();
    s.c2s.reset();
    s.pool.reset();
    spdlog::info("xmppd stopped");
}

}  // namespace xmppd
