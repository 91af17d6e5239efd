#include "modules/register/register_module.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <unordered_map>

#include "server/accounts.hpp"
#include "xmpp/errors.hpp"

namespace xmppd::modules {

using xmpp::Element;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

constexpr std::string_view kRegister = "jabber:iq:register";

}  // namespace

struct RegisterModule::Impl {
    Accounts* accounts = nullptr;
    int perIpPerHour = 5;
    std::string instructions;
    bool allowRemove = true;

    // Registrations per address in the last hour: memory only, bounded by
    // the number of addresses seen within the hour, each deque by the limit.
    std::mutex mutex;
    std::unordered_map<std::string, std::deque<std::chrono::steady_clock::time_point>> recent;

    // Counts one attempt from `ip`; seconds to wait when over the limit.
    int admit(const std::string& ip) {
        auto now = std::chrono::steady_clock::now();
        std::lock_guard lock(mutex);
        constexpr auto kHour = std::chrono::hours(1);
        if (recent.size() > 100000) {  // far more addresses than a hour should see: forget the idle ones
            std::erase_if(recent,
                          [&](auto& kv) { return kv.second.empty() || now - kv.second.back() >= kHour; });
        }
        auto& times = recent[ip];
        while (!times.empty() && now - times.front() >= kHour) {
            times.pop_front();
        }
        if (static_cast<int>(times.size()) >= perIpPerHour) {
            return static_cast<int>(
                std::chrono::ceil<std::chrono::seconds>(times.front() + kHour - now).count());
        }
        times.push_back(now);
        return 0;
    }

    Element form() const {
        Element query("query", std::string(kRegister));
        query.addChild("instructions", std::string(kRegister)).addText(instructions);
        query.addChild("username", std::string(kRegister));
        query.addChild("password", std::string(kRegister));
        return query;
    }

    // Before authentication (XEP-0077 §3.1): the form, or a new account.
    void preAuth(const PreAuthRequest& req, const PreAuthReply& reply) {
        if (req.iq.attr("type") == "get") {
            Element result = xmpp::makeIqResult(req.iq);
            result.addChild(form());
            return reply(std::move(result));
        }
        const Element* user = req.payload.findChild("username", kRegister);
        const Element* pass = req.payload.findChild("password", kRegister);
        if (!user || !pass || user->text().empty() || pass->text().empty()) {
            return reply(xmpp::makeErrorReply(req.iq, StanzaError(StanzaCondition::NotAcceptable,
                                                                  "a username and a password are required")));
        }
        if (int wait = admit(req.peerIp)) {
            spdlog::info("register: {} refused for {}: too many registrations", user->text(), req.peerIp);
            return reply(xmpp::makeErrorReply(
                req.iq, StanzaError(StanzaCondition::ResourceConstraint, xmpp::StanzaErrorType::Wait,
                                    "too many registrations from your address; try again in " +
                                        std::to_string(wait) + " s")));
        }
        std::string username = user->text();
        std::string host = req.host;
        std::string ip = req.peerIp;
        Element iq = req.iq;
        accounts->create(
            username, host, pass->text(), nullptr, [iq, reply, username, host, ip](Accounts::Status s) {
                switch (s) {
                    case Accounts::Status::Ok:
                        spdlog::info("register: {}@{} registered in-band from {}", username, host, ip);
                        return reply(xmpp::makeIqResult(iq));
                    case Accounts::Status::Exists:
                        return reply(xmpp::makeErrorReply(
                            iq, StanzaError(StanzaCondition::Conflict, "the username is taken")));
                    case Accounts::Status::Invalid:
                        return reply(xmpp::makeErrorReply(
                            iq, StanzaError(StanzaCondition::NotAcceptable,
                                            "the username or the password is not valid")));
                    default:
                        return reply(xmpp::makeErrorReply(
                            iq, StanzaError(StanzaCondition::ResourceConstraint, xmpp::StanzaErrorType::Wait,
                                            "storage is busy; try again later")));
                }
            });
    }

    // Logged in (XEP-0077 §3.2, §3.3): the form, a password change, or <remove/>.
    void authenticated(const IqRequest& req, const IqResponder& r) {
        if (req.to.bare() != req.from.bare() && !req.to.local().empty()) {
            return r.error(StanzaError(StanzaCondition::Forbidden, "only your own account"));
        }
        std::string username(req.from.local());
        std::string host(req.from.domain());
        if (req.iq.attr("type") == "get") {
            Element query = form();
            query.addChild("registered", std::string(kRegister));
            query.findChild("username", kRegister)->addText(username);
            return r.result(&query);
        }
        auto done = [r](Accounts::Status s) {
            if (s == Accounts::Status::Ok) {
                return r.result();
            }
            r.error(s == Accounts::Status::Invalid
                        ? StanzaError(StanzaCondition::NotAcceptable, "not a valid password")
                        : StanzaError(StanzaCondition::InternalServerError));
        };
        if (req.payload.findChild("remove", kRegister)) {
            if (!allowRemove) {
                return r.error(
                    StanzaError(StanzaCondition::NotAllowed, "accounts are removed by the administrator"));
            }
            spdlog::info("register: {}@{} removes its account", username, host);
            return accounts->remove(username, host, nullptr, done);
        }
        const Element* user = req.payload.findChild("username", kRegister);
        const Element* pass = req.payload.findChild("password", kRegister);
        if (!pass || pass->text().empty() || (user && user->text() != username)) {
            return r.error(StanzaError(StanzaCondition::BadRequest,
                                       "a password change needs your username and a password"));
        }
        accounts->changePassword(username, host, pass->text(), nullptr, done);
    }
};

RegisterModule::RegisterModule() : impl_(std::make_shared<Impl>()) {}
RegisterModule::~RegisterModule() = default;

std::vector<OptionSpec> RegisterModule::options() {
    using T = OptionSpec::Type;
    return {
        {"registrations_per_ip_per_hour", T::Integer, "5", 1, 100000,
         "new accounts per client address per hour"},
        {"instructions", T::String, "Choose a username and a password.", 0, 0,
         "shown by clients above the form"},
        {"allow_remove", T::Boolean, "true", 0, 0, "whether users may remove their own account in-band"},
    };
}

Registrations RegisterModule::start(ModuleContext& ctx) {
    auto impl = impl_;
    impl->accounts = &ctx.accounts;
    impl->perIpPerHour = static_cast<int>(ctx.options.integer("registrations_per_ip_per_hour"));
    impl->instructions = ctx.options.string("instructions");
    impl->allowRemove = ctx.options.boolean("allow_remove");
    Registrations regs;
    regs.features.push_back(std::string(kRegister));
    regs.preAuthIqs.push_back(
        {std::string(kRegister), "<register xmlns='http://jabber.org/features/iq-register'/>",
         [impl](const PreAuthRequest& req, PreAuthReply reply) { impl->preAuth(req, reply); }});
    auto handler = [impl](const IqRequest& req, const IqResponder& r) { impl->authenticated(req, r); };
    regs.iqHandlers.push_back({IqScope::Server, std::string(kRegister), handler});
    regs.iqHandlers.push_back({IqScope::Account, std::string(kRegister), handler});
    return regs;
}

}  // namespace xmppd::modules
