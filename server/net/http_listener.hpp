#pragma once

#include <cstdint>
#include <memory>

#include "server/config.hpp"

namespace xmppd {

class HttpRouteTable;
class IoRuntime;
class Worker;

// The HTTP/1.1 listeners (`module: http`): HTTPS with the server's
// certificate, or plain HTTP behind a proxy; keep-alive; the limits of
// `http:`. Each connection lives on one worker like a session; requests go
// to the route table, and the answer is written on the connection's worker
// whatever thread it comes from. Beast and Asio stay in http_listener.cpp.
class HttpService {
  public:
    // routes must outlive the service.
    HttpService(const HttpConfig& limits, const HttpRouteTable& routes);
    ~HttpService();
    HttpService(const HttpService&) = delete;
    HttpService& operator=(const HttpService&) = delete;

    // Binds one listener (HTTPS when listener.directTls, with tls's files).
    // Returns the bound port. Throws std::runtime_error for the operator.
    uint16_t listen(IoRuntime& io, const ListenerConfig& listener, const TlsConfig& tls);
    // At shutdown, on w's thread: closes w's connections and refuses new ones.
    void shutdownWorker(Worker& w);
    size_t liveConnections() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace xmppd
