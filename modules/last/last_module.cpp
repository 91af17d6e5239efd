#include "modules/last/last_module.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <mutex>

#include "modules/last/store.hpp"
#include "server/router.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"

namespace xmppd::modules {

using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

constexpr std::string_view kLast = "jabber:iq:last";

int64_t nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Element answer(int64_t seconds, const std::string& status) {
    Element q("query", std::string(kLast));
    q.setAttr("seconds", std::to_string(std::max<int64_t>(0, seconds)));
    if (!status.empty()) {
        q.addText(status);
    }
    return q;
}

// Cuts a UTF-8 string to at most max bytes without splitting a character.
std::string truncateUtf8(std::string s, size_t max) {
    if (s.size() <= max) {
        return s;
    }
    size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;
    }
    s.resize(n);
    return s;
}

}  // namespace

struct LastModule::Impl : std::enable_shared_from_this<LastModule::Impl> {
    Router* router = nullptr;
    Hooks* hooks = nullptr;
    storage::Pool* pool = nullptr;
    int64_t startedAt = 0;
    size_t maxStatusBytes = 1024;

    // The status text of each session's latest unavailable presence, by full
    // JID, until the session closes.
    std::mutex mutex;
    std::map<Jid, std::string> lastStatus;

    bool anyAvailable(const Jid& bare) const {
        for (const auto& r : router->resources(bare)) {
            if (r.available) {
                return true;
            }
        }
        return false;
    }

    void onPresence(const PresenceChanged& p) {
        std::lock_guard lock(mutex);
        if (p.available) {
            lastStatus.erase(p.jid);
            return;
        }
        const Element* status = p.presence ? p.presence->findChild("status", xmpp::ns::kClient) : nullptr;
        lastStatus[p.jid] = status ? truncateUtf8(status->text(), maxStatusBytes) : std::string();
    }

    void onClosed(const SessionEvent& e) {
        std::string status;
        {
            std::lock_guard lock(mutex);
            auto it = lastStatus.find(e.jid);
            if (it != lastStatus.end()) {
                status = std::move(it->second);
                lastStatus.erase(it);
            }
        }
        // The closing session has already left the routing table: record the
        // logout only when it was the user's last one.
        if (!router->resources(e.jid.bare()).empty()) {
            return;
        }
        last::LastSeen seen{nowSeconds(), std::move(status)};
        Jid jid = e.jid;
        bool queued = pool->submit([jid, seen](storage::Connection& c) {
            try {
                last::store::set(c, jid.domain(), jid.local(), seen);
            } catch (const storage::Error& ex) {
                spdlog::warn("last: recording the logout of {} failed: {}", jid.bareStr(), ex.what());
            }
        });
        if (!queued) {
            spdlog::warn("last: storage busy, logout of {} not recorded", jid.bareStr());
        }
    }

    void onUserQuery(const IqRequest& req, const IqResponder& r) {
        if (req.iq.attr("type") != "get") {
            r.error(StanzaError(StanzaCondition::NotAllowed));
            return;
        }
        if (!router->isLocalHost(req.from.domain()) || req.from.local().empty()) {
            r.error(StanzaError(StanzaCondition::Forbidden));
            return;
        }
        Jid user = req.to.bare();
        if (req.from.bare() == user) {
            answerUser(user, r);
            return;
        }
        // XEP-0012 §4 (RFC 6121 §4): a user's last activity is presence
        // information, for the user and the contacts subscribed to it only.
        auto self = shared_from_this();
        SubscriptionQuery query{
            user, req.from.bare(),
            [self, user, r](std::optional<bool> subscribed) {
                if (!subscribed) {
                    r.error(StanzaError(StanzaCondition::InternalServerError, xmpp::StanzaErrorType::Wait,
                                        "subscriptions could not be read"));
                } else if (*subscribed) {
                    self->answerUser(user, r);
                } else {
                    self->refuse(user, r);
                }
            },
            SubscriptionQuery::Question::Subscribed};
        if (hooks->subscriptionQuery.run(query) == Flow::Continue) {
            refuse(user, r);  // no roster module: no subscriptions
        }
    }

    // A requester without a subscription: <forbidden/>, unless the account
    // does not exist (RFC 6121 §8.5.1: <service-unavailable/>, as before).
    void refuse(const Jid& user, const IqResponder& r) {
        lookup(user, r, [r](const last::Lookup& found) {
            r.error(StanzaError(found.account ? StanzaCondition::Forbidden
                                              : StanzaCondition::ServiceUnavailable));
        });
    }

    // Reads the user's row on the storage pool and hands it to `then` there;
    // a storage failure or a full queue is answered on the way.
    template <typename Then>
    void lookup(const Jid& user, const IqResponder& r, Then then) {
        bool queued = pool->submit([user, r, then](storage::Connection& c) {
            last::Lookup found;
            try {
                found = last::store::get(c, user.domain(), user.local());
            } catch (const storage::Error& e) {
                spdlog::warn("last: reading {} failed: {}", user.bareStr(), e.what());
                r.error(StanzaError(StanzaCondition::InternalServerError));
                return;
            }
            then(found);
        });
        if (!queued) {
            r.error(StanzaError(StanzaCondition::ResourceConstraint, "storage is busy"));
        }
    }

    void answerUser(const Jid& user, const IqResponder& r) {
        if (anyAvailable(user)) {
            Element q = answer(0, "");
            r.result(&q);
            return;
        }
        lookup(user, r, [r](const last::Lookup& found) {
            if (!found.account) {
                // RFC 6121 §8.5.1: a nonexistent account looks like one
                // without the feature.
                r.error(StanzaError(StanzaCondition::ServiceUnavailable));
            } else if (!found.seen) {
                r.error(StanzaError(StanzaCondition::ItemNotFound, "no last activity recorded"));
            } else {
                Element q = answer(nowSeconds() - found.seen->logoutAt, found.seen->status);
                r.result(&q);
            }
        });
    }
};

LastModule::LastModule() : impl_(std::make_shared<Impl>()) {}
LastModule::~LastModule() = default;

std::vector<OptionSpec> LastModule::options() {
    return {{"max_status_bytes", OptionSpec::Type::Integer, "1024", 0, 65536,
             "bytes of the last unavailable presence's status text kept with the logout time"}};
}

Registrations LastModule::start(ModuleContext& ctx) {
    impl_->router = &ctx.router;
    impl_->hooks = &ctx.hooks;
    impl_->pool = &ctx.storage;
    impl_->startedAt = ctx.server.startedAt;
    impl_->maxStatusBytes = static_cast<size_t>(ctx.options.integer("max_status_bytes"));
    auto impl = impl_;
    Registrations regs;
    regs.features = {std::string(kLast)};
    auto m = last::store::migrations();
    regs.migrations.assign(m.begin(), m.end());
    // XEP-0012 §5: a server's last activity is its uptime.
    regs.iqHandlers.push_back(
        {IqScope::Server, std::string(kLast), [impl](const IqRequest& req, const IqResponder& r) {
             if (req.iq.attr("type") != "get") {
                 r.error(StanzaError(StanzaCondition::NotAllowed));
                 return;
             }
             Element q = answer(nowSeconds() - impl->startedAt, "");
             r.result(&q);
         }});
    regs.iqHandlers.push_back(
        {IqScope::Account, std::string(kLast),
         [impl](const IqRequest& req, const IqResponder& r) { impl->onUserQuery(req, r); }});
    regs.onHook(ctx.hooks.presenceChanged, Band::Default, "last",
                [impl](const PresenceChanged& p) { impl->onPresence(p); });
    regs.onHook(ctx.hooks.sessionClosed, Band::Default, "last",
                [impl](const SessionEvent& e) { impl->onClosed(e); });
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "last", [impl](const AccountEvent& a) {
        impl->pool->submit([a](storage::Connection& c) {
            try {
                last::store::removeUser(c, a.host, a.username);
            } catch (const storage::Error& e) {
                spdlog::error("last: removing the record of {}@{} failed: {}", a.username, a.host, e.what());
            }
        });
    });
    return regs;
}

}  // namespace xmppd::modules
