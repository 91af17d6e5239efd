#include "server/module_host.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "server/router.hpp"
#include "storage/migrations.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"

namespace xmppd {

ModuleHost::ModuleHost(const ServerInfo& info, Hooks& hooks, Router& router, Accounts& accounts,
                       storage::Pool& storage)
    : info_(info), hooks_(hooks), router_(router), accounts_(accounts), storage_(storage) {}

ModuleHost::~ModuleHost() {
    stop();
}

void ModuleHost::start(const Config& config) {
    for (const auto& [name, options] : config.modules) {
        const auto& registry = moduleRegistry();
        auto it = std::find_if(registry.begin(), registry.end(),
                               [&](const ModuleDescriptor& d) { return d.name == name; });
        if (it == registry.end()) {
            throw std::runtime_error("unknown module " + name);
        }
        auto r = std::make_unique<Running>();
        r->name = name;
        r->options = options;
        r->module = it->create();
        ModuleContext ctx{info_, r->options, hooks_, router_, accounts_, storage_, *this};
        r->regs = r->module->start(ctx);
        if (!r->regs.migrations.empty()) {
            storage_.runSync([&](storage::Connection& c) { storage::migrate(c, r->regs.migrations); });
        }
        for (auto& iq : r->regs.iqHandlers) {
            router_.addIqHandler(iq.scope, iq.ns, name, iq.handler);
        }
        for (auto& cmd : r->regs.commands) {
            commands_.push_back(cmd);
        }
        for (auto& route : r->regs.httpRoutes) {
            httpRoutes_.add(name, route);
        }
        for (const auto& iq : r->regs.preAuthIqs) {
            for (const auto& other : running_) {
                for (const auto& theirs : other->regs.preAuthIqs) {
                    if (theirs.ns == iq.ns) {
                        throw std::runtime_error("modules " + other->name + " and " + name + " both answer " +
                                                 iq.ns + " before authentication");
                    }
                }
            }
        }
        if (r->regs.keepalive) {
            keepalive_ = r->regs.keepalive;
        }
        spdlog::info("module {} started", name);
        running_.push_back(std::move(r));
    }
}

void ModuleHost::stop() {
    while (!running_.empty()) {
        auto& r = running_.back();
        for (auto& iq : r->regs.iqHandlers) {
            router_.removeIqHandler(iq.scope, iq.ns);
        }
        httpRoutes_.removeOwner(r->name);
        for (auto it = r->regs.undo.rbegin(); it != r->regs.undo.rend(); ++it) {
            (*it)();
        }
        r->module->stop();
        running_.pop_back();
    }
}

std::vector<std::string> ModuleHost::features() const {
    std::set<std::string> all;
    for (const auto& r : running_) {
        all.insert(r->regs.features.begin(), r->regs.features.end());
    }
    return {all.begin(), all.end()};
}

std::vector<DiscoIdentity> ModuleHost::identities() const {
    std::vector<DiscoIdentity> out{{"server", "im", info_.name}};
    for (const auto& r : running_) {
        out.insert(out.end(), r->regs.identities.begin(), r->regs.identities.end());
    }
    return out;
}

std::vector<PreAuthIq> ModuleHost::preAuthIqs() const {
    std::vector<PreAuthIq> out;
    for (const auto& r : running_) {
        out.insert(out.end(), r->regs.preAuthIqs.begin(), r->regs.preAuthIqs.end());
    }
    return out;
}

std::string ModuleHost::streamFeatures() const {
    std::string out;
    for (const auto& r : running_) {
        for (const auto& f : r->regs.streamFeatures) {
            out += f;
        }
    }
    return out;
}

std::vector<std::string> ModuleHost::moduleNames() const {
    std::vector<std::string> out;
    for (const auto& r : running_) {
        out.push_back(r->name);
    }
    return out;
}

}  // namespace xmppd
