#pragma once

#include <memory>
#include <string>

#include "server/config.hpp"

namespace xmppd {

// The composition root's object graph: config, storage, hooks, router,
// accounts, modules, c2s and the event loops. main.cpp builds one and runs it.
class Server {
  public:
    explicit Server(Config config);
    ~Server();
    // Opens storage, runs migrations, starts modules, binds listeners.
    // Throws std::runtime_error with a message meant for the operator.
    void start();
    // Blocks until SIGINT/SIGTERM, then closes every stream cleanly.
    void run();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Points the default logger at path (appending), replacing its sinks: used
// at start and on SIGHUP so that a rotated log file is let go.
void reopenLogFile(const std::string& path);

// Every module's option schema, for config validation (from the registry).
ModuleSchemas moduleSchemas();

}  // namespace xmppd
