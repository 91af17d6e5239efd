#pragma once

#include <atomic>
#include <memory>
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

  private:
    const Config& config_;
    Router& router_;
    std::atomic<uint64_t> nextId_{0};
    SessionRegistry<ComponentSession> sessions_;
};

}  // namespace xmppd
