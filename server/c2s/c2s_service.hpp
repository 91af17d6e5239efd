#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/config.hpp"
#include "server/module.hpp"
#include "server/session_registry.hpp"

namespace xmppd {

class Accounts;
class C2sSession;
class Router;
class TlsContext;
class Transport;
class Worker;
struct Hooks;

// What every c2s session shares: configuration, the router, accounts, the
// hooks, TLS, and the per-worker session sets used for timeouts, stats and
// shutdown (each set is touched only by its own worker's thread).
class C2sService {
  public:
    C2sService(const Config& config, Router& router, Accounts& accounts, Hooks& hooks, TlsContext* tls,
               size_t workers);
    ~C2sService();

    // A new connection accepted on listener; runs on worker's thread.
    void accept(Worker& worker, std::shared_ptr<Transport> transport, const ListenerConfig& listener);
    // Periodic sweep on worker's thread: login timeouts, idle pings.
    void tick(Worker& worker);
    // Ends every stream with <system-shutdown/>; runs on worker's thread.
    void shutdownWorker(Worker& worker);
    size_t liveSessions() const { return sessions_.live(); }

    struct QueueStats {
        size_t sessions = 0;
        size_t queuedBytes = 0;
        size_t maxQueuedBytes = 0;
    };
    // Gathers the queue gauges from every worker's own thread.
    QueueStats collect(Worker& worker) const;

    void setKeepalive(std::optional<Keepalive> k) { keepalive_ = k; }
    void setStreamFeatures(std::string f) { streamFeatures_ = std::move(f); }
    void setPreAuthIqs(std::vector<PreAuthIq> iqs);
    const std::string& preAuthFeatures() const { return preAuthFeatures_; }
    const PreAuthIq* preAuthIq(std::string_view ns) const;
    const std::string& streamFeatures() const { return streamFeatures_; }

    // For sessions.
    const Config& config() const { return config_; }
    Router& router() { return router_; }
    Accounts& accounts() { return accounts_; }
    Hooks& hooks() { return hooks_; }
    TlsContext* tls() const { return tls_; }
    const std::optional<Keepalive>& keepalive() const { return keepalive_; }
    uint64_t nextSessionId() { return nextId_.fetch_add(1) + 1; }
    void sessionEnded(C2sSession& session);

    // XEP-0198 resumption ids → sessions that can be resumed.
    void smRegister(const std::string& id, const std::shared_ptr<C2sSession>& session);
    void smUnregister(const std::string& id, const C2sSession* session);
    std::shared_ptr<C2sSession> smFind(const std::string& id);

  private:
    const Config& config_;
    Router& router_;
    Accounts& accounts_;
    Hooks& hooks_;
    TlsContext* tls_;
    std::optional<Keepalive> keepalive_;
    std::string streamFeatures_;
    std::vector<PreAuthIq> preAuthIqs_;
    std::string preAuthFeatures_;
    std::atomic<uint64_t> nextId_{0};
    SessionRegistry<C2sSession> sessions_;
    std::mutex smMutex_;
    std::unordered_map<std::string, std::weak_ptr<C2sSession>> smSessions_;
};

}  // namespace xmppd
