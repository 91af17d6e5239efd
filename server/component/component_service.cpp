#include "server/component/component_service.hpp"

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
