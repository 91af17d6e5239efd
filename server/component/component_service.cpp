#include "server/component/component_service.hpp"

#include <algorithm>

#include "server/component/component_session.hpp"
#include "server/net/transport.hpp"
#include "server/worker.hpp"

namespace xmppd {

ComponentService::ComponentService(const Config& config, Router& router, size_t workers)
    : config_(config), router_(router), sessions_(workers) {}

ComponentService::~ComponentService() = default;

const ComponentConfig* ComponentService::find(std::string_view domain) const {
    for (const auto& c : config_.components) {
        if (c.domain == domain) {
            return &c;
        }
    }
    return nullptr;
}

void ComponentService::accept(Worker& worker, std::shared_ptr<Transport> transport) {
    auto session = std::make_shared<ComponentSession>(*this, worker, std::move(transport));
    sessions_.add(worker, session);
    session->start();
}

int ComponentService::admitConnection(const ComponentConfig& component,
                                      std::chrono::steady_clock::time_point now) {
    if (component.connectionsPerMinute <= 0) {
        return 0;
    }
    constexpr auto kWindow = std::chrono::minutes(1);
    std::lock_guard lock(attemptsMutex_);
    auto& recent = attempts_[component.domain];
    while (!recent.empty() && now - recent.front() >= kWindow) {
        recent.pop_front();
    }
    if (recent.size() >= static_cast<size_t>(component.connectionsPerMinute)) {
        auto wait = std::chrono::ceil<std::chrono::seconds>(recent.front() + kWindow - now);
        return std::max(1, static_cast<int>(wait.count()));
    }
    recent.push_back(now);
    return 0;
}

void ComponentService::sessionEnded(ComponentSession& session) {
    sessions_.remove(session);
}

void ComponentService::tick(Worker& worker) {
    auto now = ComponentSession::Clock::now();
    sessions_.forEach(worker, [now](ComponentSession& s) { s.tick(now); });
}

void ComponentService::shutdownWorker(Worker& worker) {
    sessions_.forEach(worker, [](ComponentSession& s) { s.shutdown(); });
}

}  // namespace xmppd
