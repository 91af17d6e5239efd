#pragma once
// Fakes behind the Session and Worker interfaces, for router and component tests.

#include <functional>
#include <string_view>
#include <vector>

#include "server/session.hpp"
#include "server/worker.hpp"

namespace xmppd::test {

// Runs posted work at once.
struct InlineWorker : Worker {
    void post(std::function<void()> fn) override { fn(); }
    size_t index() const override { return 0; }
    bool inThisThread() const override { return true; }
};

// A session that records what it was given; tracked deliveries are accepted.
template <typename WorkerT = InlineWorker>
struct FakeSession : Session {
    explicit FakeSession(xmpp::Jid j) : jid_(std::move(j)) {}
    uint64_t id() const override { return 1; }
    const xmpp::Jid& jid() const override { return jid_; }
    Worker& worker() override { return worker_; }
    void deliver(xmpp::Element stanza) override { received.push_back(std::move(stanza)); }
    void deliverTracked(xmpp::Element stanza, std::function<void(bool)> done) override {
        received.push_back(std::move(stanza));
        done(true);
    }
    void closeWithError(xmpp::StreamError e) override { closed.push_back(std::move(e)); }
    size_t queuedBytes() const override { return 0; }
    std::string_view peer() const override { return "fake"; }

    xmpp::Jid jid_;
    WorkerT worker_;
    std::vector<xmpp::Element> received;
    std::vector<xmpp::StreamError> closed;
};

}  // namespace xmppd::test
