#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/config.hpp"
#include "server/session_registry.hpp"

namespace xmppd {

class ComponentSession;
class Router;
class Transport;
class Worker;

// What every external component session (XEP-0114) shares: the configured
// components, the router, and the per-worker session sets used for timeouts
// and shutdown (each set is touched only by its own worker's thread).
class ComponentService {
  public:
    ComponentService(const Config& config, Router& router, size_t workers);
    ~ComponentService();

    // A new connection on a component listener; runs on worker's thread.
    void accept(Worker& worker, std::shared_ptr<Transport> transport);
    // Periodic sweep on worker's thread: handshake timeouts.
    void tick(Worker& worker);
    // Ends every stream with <system-shutdown/>; runs on worker's thread.
    void shutdownWorker(Worker& worker);
    size_t liveSessions() const { return sessions_.live(); }

    // For sessions.
    const Config& config() const { return config_; }
    Router& router() { return router_; }
    // The configured component for a (prepared) domain, or nullptr.
    const ComponentConfig* find(std::string_view domain) const;
    uint64_t nextSessionId() { return nextId_.fetch_add(1) + 1; }
    void sessionEnded(ComponentSession& session);
    // Counts one stream naming the component's domain. Returns 0 when it is
    // admitted, else the seconds until connections_per_minute allows another
    // (a component reconnecting in a loop, or someone guessing the secret).
    int admitConnection(const ComponentConfig& component, std::chrono::steady_clock::time_point now);

  private:
    const Config& config_;
    Router& router_;
    std::atomic<uint64_t> nextId_{0};
    SessionRegistry<ComponentSession> sessions_;
    // Recent stream starts per domain, at most connections_per_minute each;
    // sessions on every worker count here.
    std::mutex attemptsMutex_;
    std::unordered_map<std::string, std::deque<std::chrono::steady_clock::time_point>> attempts_;
};

}  // namespace xmppd
