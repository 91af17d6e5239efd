#pragma once

// The HTTP API as modules see it: a request, a response, a route. No Boost
// here; the listener that speaks HTTP/1.1 is server/net/http_listener.cpp.

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xmppd {

struct HttpRequest {
    std::string method;  // as sent, e.g. "GET"
    std::string target;  // the request target as sent: path and query
    std::string path;    // the target up to '?', not percent-decoded
    std::string query;   // after '?', without it; empty when there is none
    // In the order sent; names lowercased, values as sent.
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string peer;  // the client's IP address, without the port (no proxy headers applied)

    // The first header of that name (any case), or nullptr.
    const std::string* header(std::string_view name) const;
};

struct HttpResponse {
    int status = 200;
    std::string contentType = "application/json";
    // Extra headers; a Cache-Control here replaces the default "no-store".
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
};

// Answers one request. May be called later and from any thread, exactly once
// (later calls are ignored); the connection takes the response back to its
// own worker. A reply dropped without being called answers 500.
using HttpReply = std::function<void(HttpResponse)>;
using HttpHandler = std::function<void(const HttpRequest&, HttpReply)>;

struct HttpRoute {
    std::string method;  // e.g. "GET", "POST"
    std::string path;    // exact match, e.g. "/v1/health"
    HttpHandler handler;
};

// {"error": error, "text": text} with that status.
HttpResponse jsonError(int status, std::string_view error, std::string_view text);

}  // namespace xmppd
