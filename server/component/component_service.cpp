#include "server/component/component_service.hpp"

#include "server/component/component_session.hpp"
#include "server/net/transport.hpp"
#include "server/worker.hpp"

namespace xmppd {

ComponentService::ComponentService(const Config& config, Router& router, size_t workers)
    : config_(config), router_(router), perWorker_(workers) {}

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
    perWorker_[worker.index()].emplace(session.get(), session);
    ++live_;
    session->start();
}

void ComponentService::sessionEnded(ComponentSession& session) {
    auto& set = perWorker_[session.worker().index()];
    auto it = set.find(&session);
    if (it == set.end()) {
        return;
    }
    // We are inside the session's own call chain: release our reference on
    // a later turn of the loop.
    auto keep = std::move(it->second);
    set.erase(it);
    --live_;
    session.worker().post([keep = std::move(keep)] {});
}

void ComponentService::tick(Worker& worker) {
    auto now = ComponentSession::Clock::now();
    std::vector<std::shared_ptr<ComponentSession>> sessions;
    for (auto& [_, s] : perWorker_[worker.index()]) {
        sessions.push_back(s);
    }
    for (auto& s : sessions) {
        s->tick(now);
    }
}

void ComponentService::shutdownWorker(Worker& worker) {
    std::vector<std::shared_ptr<ComponentSession>> sessions;
    for (auto& [_, s] : perWorker_[worker.index()]) {
        sessions.push_back(s);
    }
    for (auto& s : sessions) {
        s->shutdown();
    }
}

}  // namespace xmppd
