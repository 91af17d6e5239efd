#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "server/config.hpp"
#include "server/net/transport.hpp"
#include "server/worker.hpp"

namespace xmppd {

class TlsContext;
// An accepted socket, still raw (defined in asio_detail.hpp, for server/net only).
struct AcceptedSocket;

// The event loops: one io_context per worker thread, the listeners, the
// control socket, signals and periodic ticks. The only header that fronts
// Boost.Asio; Asio itself is confined to io_runtime.cpp and tcp_transport.cpp.
class IoRuntime {
  public:
    using AcceptFn = std::function<void(Worker&, std::shared_ptr<Transport>)>;
    // For listeners that are not XMPP streams (HTTP): the socket as accepted.
    using SocketAcceptFn = std::function<void(Worker&, AcceptedSocket&)>;
    // A control request (the decoded argument list) and the way to answer it.
    using ControlFn = std::function<void(std::vector<std::string> args,
                                         std::function<void(int code, std::string out)> reply)>;

    explicit IoRuntime(int workers);
    ~IoRuntime();

    size_t workerCount() const;
    Worker& worker(size_t i);

    // Binds a TCP listener (throws std::runtime_error naming address and port).
    // Each accepted connection goes round-robin to a worker; accept runs there.
    // Returns the bound port (useful with port 0).
    uint16_t listen(const ListenerConfig& cfg, TlsContext* tls, size_t maxOutboundBytes, AcceptFn onAccept);
    // The same, handing over each socket as accepted, on its worker's thread.
    uint16_t listenSockets(const ListenerConfig& cfg, SocketAcceptFn onAccept);
    // The Unix control socket, created with mode 0600.
    void listenControl(const std::string& path, ControlFn onRequest);
    // Runs fn on every worker, on its own thread, every period.
    void every(std::chrono::milliseconds period, std::function<void(Worker&)> fn);
    // Called on the main thread for SIGINT/SIGTERM (stop) and SIGHUP.
    void onSignal(std::function<void(int)> fn);

    // Starts the worker threads and blocks handling signals until stop().
    void run();
    // Stops accepting (listeners and control socket closed).
    void closeListeners();
    // Ends run(): stops the event loops and joins the threads.
    void stop();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace xmppd
