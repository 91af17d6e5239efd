#pragma once

// The module API: what a module declares and what it may use. A module sees
// this header, hooks.hpp and its own storage; never the router's or a
// session's internals.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/config.hpp"
#include "server/hooks.hpp"
#include "server/http/http.hpp"
#include "storage/migrations.hpp"
#include "xmpp/element.hpp"
#include "xmpp/errors.hpp"
#include "xmpp/jid.hpp"

namespace storage {
class Pool;
}  // namespace storage

namespace xmppd {

class Router;
class Accounts;

// Who an iq handler answers for: the server itself (to='host') or a user's
// account (to='user@host' or no 'to', RFC 6120 §10.3.3).
enum class IqScope { Server, Account };

struct IqRequest {
    const xmpp::Element& iq;  // type get or set, exactly one payload child
    const xmpp::Element& payload;
    xmpp::Jid from;
    xmpp::Jid to;
};

// Answers an iq: result(payload-or-empty) or error(condition).
class IqResponder {
  public:
    IqResponder(Router& router, const IqRequest& request);
    void result(xmpp::Element* payload = nullptr) const;
    void error(const xmpp::StanzaError& error) const;

  private:
    Router& router_;
    xmpp::Element reply_;
};

using IqHandler = std::function<void(const IqRequest&, const IqResponder&)>;

// An iq on a c2s stream that has not authenticated yet (XEP-0077 in-band
// registration): answered on that stream, never routed.
struct PreAuthRequest {
    const xmpp::Element& iq;  // type get or set, exactly one payload child
    const xmpp::Element& payload;
    std::string host;    // the host the stream is for
    std::string peerIp;  // the client's address, without the port
    bool tls = false;
};
// Sends the answer, a whole <iq/>, on that stream; once, from any thread.
using PreAuthReply = std::function<void(xmpp::Element iq)>;
using PreAuthIqHandler = std::function<void(const PreAuthRequest&, PreAuthReply)>;
struct PreAuthIq {
    std::string ns;       // of the payload, e.g. jabber:iq:register
    std::string feature;  // stream feature offered before authentication (XML), may be empty
    PreAuthIqHandler handler;
};

struct DiscoIdentity {
    std::string category;
    std::string type;
    std::string name;
};

using AdminReply = std::function<void(int code, std::string output)>;

// An admin command, declared once and served by xmppctl (later by the HTTP
// admin API and ad-hoc commands) from the same registry.
struct AdminCommand {
    std::string name;
    std::vector<std::string> args;  // argument names, for usage and arity checks
    std::string help;               // one line
    std::function<void(const std::vector<std::string>& args, AdminReply reply)> run;
};

// Server-initiated pings on silent connections (XEP-0199 §4.2).
struct Keepalive {
    int interval = 0;  // seconds of silence before a ping
    int timeout = 0;   // seconds to wait for any reply
};

// What a module contributes; the host applies it and removes it on stop.
class Registrations {
  public:
    std::vector<std::string> features;
    std::vector<DiscoIdentity> identities;
    // Stream features offered after authentication (serialized XML).
    std::vector<std::string> streamFeatures;
    struct Iq {
        IqScope scope;
        std::string ns;
        IqHandler handler;
    };
    std::vector<Iq> iqHandlers;
    std::vector<AdminCommand> commands;
    // Served by every `module: http` listener; a method and path taken by
    // another module is a startup error naming both.
    std::vector<HttpRoute> httpRoutes;
    std::vector<PreAuthIq> preAuthIqs;
    std::vector<storage::Migration> migrations;
    std::optional<Keepalive> keepalive;

    template <typename Hook, typename Fn>
    void onHook(Hook& hook, Band band, std::string module, Fn fn, int offset = 0) {
        uint64_t id = hook.add(band, offset, std::move(module), std::move(fn));
        undo.push_back([&hook, id] { hook.remove(id); });
    }
    std::vector<std::function<void()>> undo;
};

// Read-only facts about the running server, for modules.
struct ServerInfo {
    std::string name = "xmppd";
    std::string version;
    std::vector<std::string> hosts;
    int64_t startedAt = 0;  // unix seconds
};

// The disco view of all running modules; answered lazily at query time.
class DiscoRegistry {
  public:
    virtual ~DiscoRegistry() = default;
    virtual std::vector<std::string> features() const = 0;
    virtual std::vector<DiscoIdentity> identities() const = 0;
};

struct ModuleContext {
    const ServerInfo& server;
    const ModuleOptions& options;
    Hooks& hooks;
    Router& router;
    Accounts& accounts;
    storage::Pool& storage;
    const DiscoRegistry& disco;
};

class Module {
  public:
    virtual ~Module() = default;
    virtual std::string_view name() const = 0;
    // XEPs (with versions) this module implements, for docs/xeps.md.
    virtual std::vector<std::string> xeps() const { return {}; }
    virtual Registrations start(ModuleContext& ctx) = 0;
    virtual void stop() {}
};

struct ModuleDescriptor {
    std::string name;
    std::vector<OptionSpec> options;
    std::function<std::unique_ptr<Module>()> create;
};

// The list of compiled-in modules (modules/registry.cpp).
const std::vector<ModuleDescriptor>& moduleRegistry();

}  // namespace xmppd
