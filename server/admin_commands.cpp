#include "server/admin_commands.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>

#include "server/accounts.hpp"
#include "server/c2s/c2s_service.hpp"
#include "server/component/component_session.hpp"
#include "server/module_host.hpp"
#include "server/net/io_runtime.hpp"
#include "server/router.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/stream_parser.hpp"

namespace xmppd {

namespace {

std::string usage(const AdminCommand& c) {
    std::string u = c.name;
    for (const auto& a : c.args) {
        u += " " + a;
    }
    return u;
}

void statusReply(const AdminReply& reply, Accounts::Status s, const std::string& okText) {
    if (s == Accounts::Status::Ok) {
        reply(0, okText + "\n");
    } else {
        reply(1, std::string(toString(s)) + "\n");
    }
}

}  // namespace

void dispatchCommand(const std::vector<AdminCommand>& commands, const std::vector<std::string>& args,
                     AdminReply reply) {
    const std::string& name = args.front();
    for (const auto& c : commands) {
        if (c.name != name) {
            continue;
        }
        if (args.size() == 2 && args[1] == "--help") {
            reply(0, "usage: xmppctl " + usage(c) + "\n  " + c.help + "\n");
            return;
        }
        if (args.size() - 1 != c.args.size()) {
            reply(2, "usage: xmppctl " + usage(c) + "\n  " + c.help + "\n");
            return;
        }
        std::vector<std::string> rest(args.begin() + 1, args.end());
        try {
            c.run(rest, reply);
        } catch (const std::exception& e) {
            reply(1, std::string("command failed: ") + e.what() + "\n");
        }
        return;
    }
    reply(2, "unknown command '" + name + "'; try: xmppctl help\n");
}

void registerCoreCommands(ModuleHost& host, AdminContext ctx) {
    Accounts* accounts = &ctx.accounts;
    Router* router = &ctx.router;
    IoRuntime* io = &ctx.io;
    C2sService* c2s = &ctx.c2s;
    storage::Pool* pool = &ctx.pool;
    const ServerInfo* info = &ctx.info;

    host.addCommand({"status", {}, "Tells whether the server is running", [info](auto&, AdminReply reply) {
                         auto now = std::chrono::duration_cast<std::chrono::seconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count();
                         reply(0, "xmppd " + info->version + " is running (uptime " +
                                      std::to_string(now - info->startedAt) + " s)\n");
                     }});
    host.addCommand(
        {"stats",
         {},
         "Sessions, users and queue gauges (bytes waiting per session, storage jobs waiting)",
         [router, io, c2s, pool](auto&, AdminReply reply) {
             // Each worker reports its own sessions' queues from its own thread.
             struct Gather {
                 std::mutex mutex;
                 C2sService::QueueStats total;
                 std::atomic<size_t> left;
             };
             auto g = std::make_shared<Gather>();
             g->left = io->workerCount();
             size_t users = router->userCount();
             size_t bound = router->sessionCount();
             size_t storageQueue = pool->queueLength();
             // XEP-0114 components: how many are connected and the longest queue.
             size_t componentsUp = 0;
             size_t componentQueueMax = 0;
             for (const auto& [domain, session] : router->components()) {
                 if (session) {
                     ++componentsUp;
                     auto c = std::static_pointer_cast<ComponentSession>(session);
                     componentQueueMax = std::max(componentQueueMax, c->queueGauge());
                 }
             }
             for (size_t i = 0; i < io->workerCount(); ++i) {
                 Worker& w = io->worker(i);
                 w.post([g, &w, c2s, reply, users, bound, storageQueue, componentsUp, componentQueueMax] {
                     auto s = c2s->collect(w);
                     {
                         std::lock_guard lock(g->mutex);
                         g->total.sessions += s.sessions;
                         g->total.queuedBytes += s.queuedBytes;
                         g->total.maxQueuedBytes = std::max(g->total.maxQueuedBytes, s.maxQueuedBytes);
                     }
                     if (--g->left == 0) {
                         std::string out;
                         out += "connections: " + std::to_string(g->total.sessions) + "\n";
                         out += "sessions: " + std::to_string(bound) + "\n";
                         out += "online_users: " + std::to_string(users) + "\n";
                         out += "outbound_queue_bytes_total: " + std::to_string(g->total.queuedBytes) + "\n";
                         out += "outbound_queue_bytes_max: " + std::to_string(g->total.maxQueuedBytes) + "\n";
                         out += "storage_queue: " + std::to_string(storageQueue) + "\n";
                         out += "components_connected: " + std::to_string(componentsUp) + "\n";
                         out += "component_queue_bytes_max: " + std::to_string(componentQueueMax) + "\n";
                         reply(0, out);
                     }
                 });
             }
         }});
    host.addCommand({"register",
                     {"USER", "HOST", "PASSWORD"},
                     "Creates an account",
                     [accounts](const std::vector<std::string>& a, AdminReply reply) {
                         accounts->create(a[0], a[1], a[2], nullptr, [a, reply](Accounts::Status s) {
                             statusReply(reply, s, "User " + a[0] + "@" + a[1] + " successfully registered");
                         });
                     }});
    host.addCommand({"unregister",
                     {"USER", "HOST"},
                     "Deletes an account and ends its sessions",
                     [accounts, router](const std::vector<std::string>& a, AdminReply reply) {
                         accounts->remove(a[0], a[1], nullptr, [a, reply, router](Accounts::Status s) {
                             if (s == Accounts::Status::Ok) {
                                 if (auto jid = xmpp::Jid::fromParts(a[0], a[1])) {
                                     for (auto& r : router->resources(*jid)) {
                                         r.session->closeWithError(
                                             {xmpp::StreamCondition::NotAuthorized, "account deleted"});
                                     }
                                 }
                             }
                             statusReply(reply, s, "User " + a[0] + "@" + a[1] + " unregistered");
                         });
                     }});
    host.addCommand({"change_password",
                     {"USER", "HOST", "NEWPASS"},
                     "Sets a new password",
                     [accounts](const std::vector<std::string>& a, AdminReply reply) {
                         accounts->changePassword(a[0], a[1], a[2], nullptr, [reply](Accounts::Status s) {
                             statusReply(reply, s, "Password changed");
                         });
                     }});
    host.addCommand({"check_account",
                     {"USER", "HOST"},
                     "Exits 0 if the account exists, 1 if not",
                     [accounts](const std::vector<std::string>& a, AdminReply reply) {
                         accounts->exists(a[0], a[1], nullptr, [a, reply](Accounts::Status s) {
                             statusReply(reply, s, "User " + a[0] + "@" + a[1] + " exists");
                         });
                     }});
    host.addCommand({"registered_users",
                     {"HOST"},
                     "Lists the accounts of a host, one per line",
                     [accounts](const std::vector<std::string>& a, AdminReply reply) {
                         accounts->list(a[0], nullptr,
                                        [reply](Accounts::Status s, std::vector<std::string> users) {
                                            if (s != Accounts::Status::Ok) {
                                                reply(1, std::string(toString(s)) + "\n");
                                                return;
                                            }
                                            std::string out;
                                            for (auto& u : users) {
                                                out += u + "\n";
                                            }
                                            reply(0, out);
                                        });
                     }});
    host.addCommand({"connected_users",
                     {},
                     "Lists the bound sessions' full JIDs, one per line",
                     [router](auto&, AdminReply reply) {
                         std::vector<std::string> jids;
                         router->forEachSession([&](const ResourceView& r, const std::string& bare) {
                             jids.push_back(bare + "/" + r.resource);
                         });
                         std::sort(jids.begin(), jids.end());
                         std::string out;
                         for (auto& j : jids) {
                             out += j + "\n";
                         }
                         reply(0, out);
                     }});
    host.addCommand({"kick_session",
                     {"USER", "HOST", "RESOURCE", "REASON"},
                     "Ends one session with a reason",
                     [router](const std::vector<std::string>& a, AdminReply reply) {
                         auto jid = xmpp::Jid::fromParts(a[0], a[1], a[2]);
                         if (!jid) {
                             reply(1, "invalid JID\n");
                             return;
                         }
                         for (auto& r : router->resources(jid->bare())) {
                             if (r.resource == jid->resource()) {
                                 r.session->closeWithError({xmpp::StreamCondition::PolicyViolation, a[3]});
                                 reply(0, "Session " + jid->str() + " kicked\n");
                                 return;
                             }
                         }
                         reply(1, "no session " + jid->str() + "\n");
                     }});
    // Both send commands address a stanza FROM a JID of ours TO anyone.
    auto sendAs = [router](const std::vector<std::string>& a, AdminReply reply,
                           std::optional<xmpp::Element> stanza) {
        auto from = xmpp::Jid::parse(a[0]);
        auto to = xmpp::Jid::parse(a[1]);
        if (!from || !to || !router->isLocalHost(from->domain())) {
            reply(1, "FROM must be a JID of a host of this server, TO a valid JID\n");
            return;
        }
        if (!stanza || !xmpp::isStanza(*stanza) || stanza->ns() != xmpp::ns::kClient) {
            reply(1, "XML is not one well-formed message, presence or iq stanza\n");
            return;
        }
        stanza->setAttr("from", from->str());
        stanza->setAttr("to", to->str());
        router->route(std::move(*stanza));
        reply(0, "");
    };
    host.addCommand(
        {"send_message",
         {"FROM", "TO", "BODY"},
         "Sends a chat message as FROM (any JID of our hosts)",
         [sendAs](const std::vector<std::string>& a, AdminReply reply) {
             // XML 1.0 §2.2: no control characters but tab, LF and CR, even escaped.
             for (unsigned char ch : a[2]) {
                 if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') {
                     reply(2, "BODY contains a control character XML cannot carry\n");
                     return;
                 }
             }
             xmpp::Element m("message", std::string(xmpp::ns::kClient));
             m.setAttr("type", "chat").setAttr("id", "xmppctl-" + std::to_string(std::time(nullptr)));
             m.addChild("body", std::string(xmpp::ns::kClient)).addText(a[2]);
             sendAs(a, std::move(reply), std::move(m));
         }});
    host.addCommand({"send_stanza",
                     {"FROM", "TO", "XML"},
                     "Routes a raw stanza (message, presence or iq) as FROM",
                     [sendAs](const std::vector<std::string>& a, AdminReply reply) {
                         sendAs(a, std::move(reply), xmpp::parseStanza(a[2]));
                     }});
    ModuleHost* hostPtr = &host;
    host.addCommand({"help", {}, "Lists the commands", [hostPtr](auto&, AdminReply reply) {
                         std::string out = "Commands:\n";
                         for (const auto& c : hostPtr->commands()) {
                             std::string u = usage(c);
                             out += "  " + u + std::string(u.size() < 44 ? 44 - u.size() : 1, ' ') + c.help +
                                    "\n";
                         }
                         reply(0, out);
                     }});
}

}  // namespace xmppd
