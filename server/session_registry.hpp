#pragma once

#include <atomic>
#include <memory>
#include <unordered_map>
#include <vector>

#include "server/worker.hpp"

namespace xmppd {

// The sessions of one kind (c2s, component) that a service owns, one set per
// worker: each set is touched only on its worker's thread.
template <typename SessionT>
class SessionRegistry {
  public:
    explicit SessionRegistry(size_t workers) : perWorker_(workers) {}

    void add(Worker& worker, std::shared_ptr<SessionT> session) {
        perWorker_[worker.index()].emplace(session.get(), std::move(session));
        ++live_;
    }

    // Called from inside the session's own call chain: the reference is
    // released on a later turn of the loop, not under its feet.
    void remove(SessionT& session) {
        auto& set = perWorker_[session.worker().index()];
        auto it = set.find(&session);
        if (it == set.end()) {
            return;
        }
        auto keep = std::move(it->second);
        set.erase(it);
        --live_;
        session.worker().post([keep = std::move(keep)] {});
    }

    // A copy of the worker's sessions: what fn does to one (end it, say)
    // does not disturb the iteration.
    template <typename Fn>
    void forEach(Worker& worker, Fn fn) {
        std::vector<std::shared_ptr<SessionT>> sessions;
        const auto& set = perWorker_[worker.index()];
        sessions.reserve(set.size());
        for (const auto& [_, s] : set) {
            sessions.push_back(s);
        }
        for (auto& s : sessions) {
            fn(*s);
        }
    }

    template <typename Fn>
    void visit(Worker& worker, Fn fn) const {
        for (const auto& [_, s] : perWorker_[worker.index()]) {
            fn(static_cast<const SessionT&>(*s));
        }
    }

    size_t live() const { return live_.load(); }

  private:
    std::atomic<size_t> live_{0};
    std::vector<std::unordered_map<SessionT*, std::shared_ptr<SessionT>>> perWorker_;
};

}  // namespace xmppd
