#include "server/c2s/c2s_service.hpp"

#include "server/c2s/c2s_session.hpp"
#include "server/net/transport.hpp"
#include "server/worker.hpp"

namespace xmppd {

C2sService::C2sService(const Config& config, Router& router, Accounts& accounts, Hooks& hooks,
                       TlsContext* tls, size_t workers)
    : config_(config), router_(router), accounts_(accounts), hooks_(hooks), tls_(tls), sessions_(workers) {}

C2sService::~C2sService() = default;

void C2sService::accept(Worker& worker, std::shared_ptr<Transport> transport,
                        const ListenerConfig& listener) {
    auto session = std::make_shared<C2sSession>(*this, worker, std::move(transport), listener);
    sessions_.add(worker, session);
    session->start();
}

void C2sService::setPreAuthIqs(std::vector<PreAuthIq> iqs) {
    preAuthIqs_ = std::move(iqs);
    preAuthFeatures_.clear();
    for (const auto& iq : preAuthIqs_) {
        preAuthFeatures_ += iq.feature;
    }
}

const PreAuthIq* C2sService::preAuthIq(std::string_view ns) const {
    for (const auto& iq : preAuthIqs_) {
        if (iq.ns == ns) {
            return &iq;
        }
    }
    return nullptr;
}

void C2sService::sessionEnded(C2sSession& session) {
    sessions_.remove(session);
}

void C2sService::tick(Worker& worker) {
    auto now = C2sSession::Clock::now();
    sessions_.forEach(worker, [now](C2sSession& s) { s.tick(now); });
}

void C2sService::shutdownWorker(Worker& worker) {
    sessions_.forEach(worker, [](C2sSession& s) { s.shutdown(); });
}

C2sService::QueueStats C2sService::collect(Worker& worker) const {
    QueueStats stats;
    sessions_.visit(worker, [&stats](const C2sSession& s) {
        size_t q = s.queuedBytes();
        stats.sessions++;
        stats.queuedBytes += q;
        stats.maxQueuedBytes = std::max(stats.maxQueuedBytes, q);
    });
    return stats;
}

}  // namespace xmppd

namespace xmppd {

void C2sService::smRegister(const std::string& id, const std::shared_ptr<C2sSession>& session) {
    std::lock_guard lock(smMutex_);
    smSessions_[id] = session;
}

void C2sService::smUnregister(const std::string& id, const C2sSession* session) {
    std::lock_guard lock(smMutex_);
    auto it = smSessions_.find(id);
    if (it != smSessions_.end()) {
        auto s = it->second.lock();
        if (!s || s.get() == session) {
            smSessions_.erase(it);
        }
    }
}

std::shared_ptr<C2sSession> C2sService::smFind(const std::string& id) {
    std::lock_guard lock(smMutex_);
    auto it = smSessions_.find(id);
    return it == smSessions_.end() ? nullptr : it->second.lock();
}

}  // namespace xmppd
