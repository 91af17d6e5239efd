#include "server/http/route_table.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace xmppd {

namespace {

// The reply a handler gets: once only, and a 500 if it is dropped unanswered
// (a handler that lost its callback must not leave the client hanging).
class ReplyOnce {
  public:
    ReplyOnce(HttpReply inner, std::string route) : inner_(std::move(inner)), route_(std::move(route)) {}
    ReplyOnce(const ReplyOnce&) = delete;
    ReplyOnce& operator=(const ReplyOnce&) = delete;
    ~ReplyOnce() {
        if (done_.exchange(true)) {
            return;
        }
        spdlog::warn("http: route {} dropped its reply unanswered", route_);
        try {
            inner_(jsonError(500, "internal-server-error", "the request was not answered"));
        } catch (const std::exception& e) {
            spdlog::warn("http: route {}: cannot answer 500: {}", route_, e.what());
        }
    }
    bool answered() const { return done_; }
    void answer(HttpResponse response) {
        if (done_.exchange(true)) {
            spdlog::warn("http: route {} answered twice; the second answer is ignored", route_);
            return;
        }
        inner_(std::move(response));
    }

  private:
    HttpReply inner_;
    std::string route_;
    std::atomic<bool> done_{false};
};

}  // namespace

void HttpRouteTable::add(const std::string& owner, HttpRoute route) {
    if (route.method.empty() || route.path.empty() || route.path.front() != '/' || !route.handler) {
        throw std::runtime_error("HTTP route '" + route.method + " " + route.path + "' of " + owner +
                                 " needs a method, a path starting with '/' and a handler");
    }
    std::unique_lock lock(mutex_);
    auto& entries = byPath_[route.path];
    for (const auto& e : entries) {
        if (e.route.method == route.method) {
            throw std::runtime_error("HTTP route " + route.method + " " + route.path + " is registered by " +
                                     e.owner + " and by " + owner);
        }
    }
    entries.push_back(Entry{owner, std::move(route)});
}

void HttpRouteTable::removeOwner(std::string_view owner) {
    std::unique_lock lock(mutex_);
    for (auto it = byPath_.begin(); it != byPath_.end();) {
        std::erase_if(it->second, [&](const Entry& e) { return e.owner == owner; });
        it = it->second.empty() ? byPath_.erase(it) : std::next(it);
    }
}

size_t HttpRouteTable::size() const {
    std::shared_lock lock(mutex_);
    size_t n = 0;
    for (const auto& [_, entries] : byPath_) {
        n += entries.size();
    }
    return n;
}

void HttpRouteTable::dispatch(const HttpRequest& req, HttpReply reply) const {
    HttpHandler handler;
    std::string owner;
    std::vector<std::string> allowed;
    {
        std::shared_lock lock(mutex_);
        auto it = byPath_.find(req.path);
        if (it != byPath_.end()) {
            for (const auto& e : it->second) {
                if (e.route.method == req.method) {
                    handler = e.route.handler;
                    owner = e.owner;
                    break;
                }
                allowed.push_back(e.route.method);
            }
        }
    }
    if (!handler) {
        if (allowed.empty()) {
            reply(jsonError(404, "not-found", "no such resource: " + req.path));
            return;
        }
        // RFC 9110 §15.5.6: a 405 lists the methods the resource supports.
        std::sort(allowed.begin(), allowed.end());
        std::string allow;
        for (const auto& m : allowed) {
            allow += (allow.empty() ? "" : ", ") + m;
        }
        auto response = jsonError(405, "method-not-allowed", req.method + " is not allowed on " + req.path);
        response.headers.emplace_back("Allow", allow);
        reply(std::move(response));
        return;
    }
    std::string route = req.method + " " + req.path + " (" + owner + ")";
    auto once = std::make_shared<ReplyOnce>(std::move(reply), route);
    try {
        handler(req, [once](HttpResponse response) { once->answer(std::move(response)); });
    } catch (const std::exception& e) {
        spdlog::error("http: route {} threw: {}", route, e.what());
        if (!once->answered()) {
            once->answer(jsonError(500, "internal-server-error", "the request failed"));
        }
    } catch (...) {
        spdlog::error("http: route {} threw", route);
        if (!once->answered()) {
            once->answer(jsonError(500, "internal-server-error", "the request failed"));
        }
    }
}

}  // namespace xmppd
