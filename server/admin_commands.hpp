#pragma once

#include <string>
#include <vector>

#include "server/module.hpp"

namespace storage {
class Pool;
}

namespace xmppd {

class Accounts;
class C2sService;
class IoRuntime;
class ModuleHost;
class Router;

struct AdminContext {
    const Config& config;
    const ServerInfo& info;
    Router& router;
    Accounts& accounts;
    storage::Pool& pool;
    IoRuntime& io;
    C2sService& c2s;
};

// The core's commands: status, stats, register, unregister, change_password,
// check_account, registered_users, connected_users, kick_session, help.
void registerCoreCommands(ModuleHost& host, AdminContext ctx);

// Finds the command, checks the arity, runs it. Exit codes: 0 ok, 1 failed,
// 2 usage error.
void dispatchCommand(const std::vector<AdminCommand>& commands, const std::vector<std::string>& args,
                     AdminReply reply);

}  // namespace xmppd
