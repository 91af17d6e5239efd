#include "modules/private/private_module.hpp"

#include <spdlog/spdlog.h>

#include "modules/common/stored_xml.hpp"
#include "modules/private/store.hpp"
#include "storage/pool.hpp"

namespace xmppd::modules {

using xmpp::Element;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

constexpr std::string_view kPrivate = "jabber:iq:private";

// XEP-0049 §3: the stream's own namespaces and this protocol's may not be
// used as storage keys.
bool reservedNamespace(std::string_view ns) {
    return ns == "jabber:client" || ns == "jabber:server" || ns == kPrivate ||
           ns == "jabber:component:accept" || ns == "http://etherx.jabber.org/streams";
}

}  // namespace

struct PrivateModule::Impl {
    storage::Pool* pool = nullptr;
    int64_t maxBytes = 65536;
    int64_t maxNamespaces = 100;

    void handle(const IqRequest& req, const IqResponder& r) {
        // XEP-0049 §3: only the user's own storage, never another's.
        if (req.to.bare() != req.from.bare()) {
            r.error(StanzaError(StanzaCondition::Forbidden, "private XML belongs to its owner only"));
            return;
        }
        if (req.payload.name() != "query") {
            r.error(StanzaError(StanzaCondition::BadRequest));
            return;
        }
        if (req.payload.elementCount() != 1) {
            r.error(StanzaError(StanzaCondition::BadRequest, "the query must hold exactly one element"));
            return;
        }
        const Element& item = *req.payload.firstChildElement();
        if (item.ns().empty()) {
            r.error(StanzaError(StanzaCondition::BadRequest, "the stored element needs a namespace"));
            return;
        }
        if (reservedNamespace(item.ns())) {
            r.error(StanzaError(StanzaCondition::NotAcceptable, "namespace " + item.ns() + " is reserved"));
            return;
        }
        std::string host = req.from.domain();
        std::string user = req.from.local();
        std::string ns = item.ns();
        if (req.iq.attr("type") == "get") {
            Element requested = item;
            bool queued = pool->submit([host, user, ns, requested, r](storage::Connection& c) {
                std::optional<std::string> xml;
                try {
                    xml = privatexml::store::get(c, host, user, ns);
                } catch (const storage::Error& e) {
                    spdlog::warn("private: reading {} of {}@{} failed: {}", ns, user, host, e.what());
                    r.error(StanzaError(StanzaCondition::InternalServerError));
                    return;
                }
                Element query("query", std::string(kPrivate));
                std::optional<Element> stored = xml ? parseStored(*xml) : std::nullopt;
                if (xml && !stored) {
                    spdlog::error("private: stored {} of {}@{} does not parse", ns, user, host);
                }
                // Nothing stored: the request's own (empty) element comes back.
                query.addChild(stored ? std::move(*stored) : requested);
                r.result(&query);
            });
            if (!queued) {
                r.error(StanzaError(StanzaCondition::ResourceConstraint, "storage is busy"));
            }
            return;
        }
        std::string xml = serializeStored(item);
        if (static_cast<int64_t>(xml.size()) > maxBytes) {
            r.error(StanzaError(
                StanzaCondition::NotAcceptable,
                "private XML is limited to " + std::to_string(maxBytes) + " bytes per namespace"));
            return;
        }
        int64_t limit = maxNamespaces;
        bool queued = pool->submit([host, user, ns, xml, limit, r](storage::Connection& c) {
            privatexml::SetResult result;
            try {
                result = privatexml::store::set(c, host, user, ns, xml, limit);
            } catch (const storage::Error& e) {
                spdlog::warn("private: storing {} of {}@{} failed: {}", ns, user, host, e.what());
                r.error(StanzaError(StanzaCondition::InternalServerError));
                return;
            }
            switch (result) {
                case privatexml::SetResult::Stored:
                    r.result();
                    break;
                case privatexml::SetResult::NoSuchUser:
                    r.error(StanzaError(StanzaCondition::ItemNotFound));
                    break;
                case privatexml::SetResult::TooMany:
                    r.error(
                        StanzaError(StanzaCondition::PolicyViolation,
                                    "private XML is limited to " + std::to_string(limit) + " namespaces"));
                    break;
            }
        });
        if (!queued) {
            r.error(StanzaError(StanzaCondition::ResourceConstraint, "storage is busy"));
        }
    }
};

PrivateModule::PrivateModule() : impl_(std::make_shared<Impl>()) {}
PrivateModule::~PrivateModule() = default;

std::vector<OptionSpec> PrivateModule::options() {
    return {
        {"max_bytes", OptionSpec::Type::Integer, "65536", 1, 16777216,
         "bytes of serialized XML stored per namespace; beyond it <not-acceptable/>"},
        {"max_namespaces", OptionSpec::Type::Integer, "100", 1, 100000,
         "namespaces stored per user; beyond it <policy-violation/>"},
    };
}

Registrations PrivateModule::start(ModuleContext& ctx) {
    impl_->pool = &ctx.storage;
    impl_->maxBytes = ctx.options.integer("max_bytes");
    impl_->maxNamespaces = ctx.options.integer("max_namespaces");
    auto impl = impl_;
    Registrations regs;
    regs.features = {std::string(kPrivate)};
    auto m = privatexml::store::migrations();
    regs.migrations.assign(m.begin(), m.end());
    regs.iqHandlers.push_back({IqScope::Account, std::string(kPrivate),
                               [impl](const IqRequest& req, const IqResponder& r) { impl->handle(req, r); }});
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "private", [impl](const AccountEvent& a) {
        impl->pool->submit([a](storage::Connection& c) {
            try {
                privatexml::store::removeUser(c, a.host, a.username);
            } catch (const storage::Error& e) {
                spdlog::error("private: removing the data of {}@{} failed: {}", a.username, a.host, e.what());
            }
        });
    });
    return regs;
}

}  // namespace xmppd::modules
