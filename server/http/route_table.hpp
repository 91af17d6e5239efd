#pragma once

#include <map>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "server/http/http.hpp"

namespace xmppd {

// The HTTP routes of the core and the running modules, shared by every HTTP
// listener. Filled at start (ModuleHost) and read by the workers; changes
// take a lock, so a later reload may add and remove routes while serving.
class HttpRouteTable {
  public:
    // Throws std::runtime_error naming both owners when the method and path
    // are already taken (like a second handler for an iq namespace).
    void add(const std::string& owner, HttpRoute route);
    // Removes every route that owner added.
    void removeOwner(std::string_view owner);
    size_t size() const;

    // Answers req through reply: the matching route's handler, else 404
    // (unknown path) or 405 with an Allow header (known path, other method).
    // The handler gets a reply that answers once (later calls are ignored
    // with a warning) and answers 500 when dropped unanswered; a handler
    // that throws answers 500, logged with the route and its owner.
    void dispatch(const HttpRequest& req, HttpReply reply) const;

  private:
    struct Entry {
        std::string owner;
        HttpRoute route;
    };
    mutable std::shared_mutex mutex_;
    std::map<std::string, std::vector<Entry>, std::less<>> byPath_;
};

}  // namespace xmppd
