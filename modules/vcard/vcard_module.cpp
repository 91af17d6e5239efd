#include "modules/vcard/vcard_module.hpp"

#include <spdlog/spdlog.h>

#include <mutex>
#include <unordered_map>

#include "modules/common/stored_xml.hpp"
#include "modules/vcard/store.hpp"
#include "modules/vcard/vcard_data.hpp"
#include "server/router.hpp"
#include "storage/pool.hpp"

namespace xmppd::modules {

using vcard::kVcard;
using xmpp::Element;
using xmpp::Jid;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

struct VcardModule::Impl : std::enable_shared_from_this<VcardModule::Impl> {
    Router* router = nullptr;
    storage::Pool* pool = nullptr;
    int64_t maxBytes = 65536;

    // Avatar hashes of users with bound sessions, so that presence never
    // waits for storage. Loaded when the first session binds, dropped when
    // the last one closes; a write bumps the generation so that a load that
    // was already under way cannot put an older hash back.
    struct Entry {
        int sessions = 0;
        uint64_t generation = 0;
        std::optional<std::string> hash;  // unknown until loaded
    };
    std::mutex mutex;
    std::unordered_map<std::string, Entry> hashes;
    uint64_t nextGeneration = 1;

    void onBound(const Jid& jid) {
        std::string bare = jid.bareStr();
        uint64_t generation;
        {
            std::lock_guard lock(mutex);
            Entry& e = hashes[bare];
            if (++e.sessions > 1) {
                return;
            }
            generation = e.generation = nextGeneration++;
        }
        auto self = shared_from_this();
        pool->submit([self, jid, bare, generation](storage::Connection& c) {
            std::optional<std::string> hash;
            try {
                hash = vcard::store::photoHash(c, jid.domain(), jid.local());
            } catch (const storage::Error& e) {
                spdlog::warn("vcard: reading the avatar hash of {} failed: {}", bare, e.what());
                return;  // presence goes out as the client wrote it
            }
            std::lock_guard lock(self->mutex);
            auto it = self->hashes.find(bare);
            if (it != self->hashes.end() && it->second.generation == generation) {
                it->second.hash = hash.value_or("");
            }
        });
    }

    void onClosed(const Jid& jid) {
        std::lock_guard lock(mutex);
        auto it = hashes.find(jid.bareStr());
        if (it != hashes.end() && --it->second.sessions <= 0) {
            hashes.erase(it);
        }
    }

    void remember(const std::string& bare, const std::string& hash) {
        std::lock_guard lock(mutex);
        auto it = hashes.find(bare);
        if (it != hashes.end()) {
            it->second.hash = hash;
            it->second.generation = nextGeneration++;
        }
    }

    void onPresence(UserSent& s) {
        if (!s.stanza->attr("type").empty()) {
            return;  // only available presence carries the avatar hash
        }
        std::optional<std::string> hash;
        {
            std::lock_guard lock(mutex);
            auto it = hashes.find(s.from.bareStr());
            if (it != hashes.end()) {
                hash = it->second.hash;
            }
        }
        if (hash) {
            vcard::applyAvatarUpdate(*s.stanza, *hash);
        }
    }

    void handle(const IqRequest& req, const IqResponder& r) {
        if (req.payload.name() != "vCard") {
            r.error(StanzaError(StanzaCondition::BadRequest));
            return;
        }
        if (req.iq.attr("type") == "set") {
            set(req, r);
        } else {
            get(req, r);
        }
    }

    void get(const IqRequest& req, const IqResponder& r) {
        Jid owner = req.to.bare();
        bool queued = pool->submit([owner, r](storage::Connection& c) {
            vcard::Lookup found;
            try {
                found = vcard::store::get(c, owner.domain(), owner.local());
            } catch (const storage::Error& e) {
                spdlog::warn("vcard: reading the vCard of {} failed: {}", owner.bareStr(), e.what());
                r.error(StanzaError(StanzaCondition::InternalServerError));
                return;
            }
            if (!found.account) {
                r.error(StanzaError(StanzaCondition::ServiceUnavailable));
                return;
            }
            std::optional<Element> card = found.vcard ? parseStored(found.vcard->xml) : std::nullopt;
            if (found.vcard && !card) {
                spdlog::error("vcard: the stored vCard of {} does not parse", owner.bareStr());
            }
            // XEP-0054 §3.1: no vCard is an empty one.
            Element answer = card ? std::move(*card) : Element("vCard", std::string(kVcard));
            r.result(&answer);
        });
        if (!queued) {
            r.error(StanzaError(StanzaCondition::ResourceConstraint, "storage is busy"));
        }
    }

    void set(const IqRequest& req, const IqResponder& r) {
        // XEP-0054 §3.2: a user updates their own vCard only.
        if (req.to.bare() != req.from.bare()) {
            r.error(StanzaError(StanzaCondition::Forbidden, "only the owner may change a vCard"));
            return;
        }
        vcard::Stored stored;
        if (req.payload.elementCount() > 0) {
            stored.xml = serializeStored(req.payload);
        }
        if (static_cast<int64_t>(stored.xml.size()) > maxBytes) {
            r.error(StanzaError(StanzaCondition::NotAcceptable,
                                "vCards are limited to " + std::to_string(maxBytes) + " bytes"));
            return;
        }
        auto hash = vcard::photoHash(req.payload);
        if (!hash) {
            r.error(StanzaError(StanzaCondition::BadRequest, "PHOTO/BINVAL is not base64"));
            return;
        }
        stored.photoHash = *hash;
        Jid owner = req.from.bare();
        auto self = shared_from_this();
        bool queued = pool->submit([self, owner, stored, r](storage::Connection& c) {
            bool ok;
            try {
                ok = vcard::store::set(c, owner.domain(), owner.local(), stored);
            } catch (const storage::Error& e) {
                spdlog::warn("vcard: storing the vCard of {} failed: {}", owner.bareStr(), e.what());
                r.error(StanzaError(StanzaCondition::InternalServerError));
                return;
            }
            if (!ok) {
                r.error(StanzaError(StanzaCondition::ItemNotFound));
                return;
            }
            self->remember(owner.bareStr(), stored.photoHash);
            r.result();
        });
        if (!queued) {
            r.error(StanzaError(StanzaCondition::ResourceConstraint, "storage is busy"));
        }
    }

    std::vector<AdminCommand> commands();
};

std::vector<AdminCommand> VcardModule::Impl::commands() {
    auto self = shared_from_this();
    // USER and HOST as xmppctl gives them; nullopt when they name no local account.
    auto account = [self](const std::vector<std::string>& a) -> std::optional<Jid> {
        auto jid = Jid::fromParts(a[0], a[1]);
        if (!jid || !self->router->isLocalHost(jid->domain())) {
            return std::nullopt;
        }
        return jid;
    };
    std::vector<AdminCommand> out;
    out.push_back({"get_vcard",
                   {"USER", "HOST", "FIELD"},
                   "A field of a user's vCard (FN, NICKNAME, N.GIVEN, EMAIL.USERID ...)",
                   [self, account](const std::vector<std::string>& a, AdminReply reply) {
                       auto jid = account(a);
                       if (!jid) {
                           reply(2, "USER HOST is not a local account\n");
                           return;
                       }
                       std::string field = a[2];
                       bool queued = self->pool->submit([jid = *jid, field, reply](storage::Connection& c) {
                           try {
                               auto found = vcard::store::get(c, jid.domain(), jid.local());
                               if (!found.account) {
                                   reply(1, "no such account\n");
                                   return;
                               }
                               std::optional<Element> card =
                                   found.vcard ? parseStored(found.vcard->xml) : std::nullopt;
                               reply(0, (card ? vcard::fieldText(*card, field) : std::string()) + "\n");
                           } catch (const storage::Error& e) {
                               reply(1, std::string("storage: ") + e.what() + "\n");
                           }
                       });
                       if (!queued) {
                           reply(1, "storage is busy\n");
                       }
                   }});
    out.push_back(
        {"set_vcard",
         {"USER", "HOST", "FIELD", "VALUE"},
         "Sets a field of a user's vCard (FN, NICKNAME, N.GIVEN ...)",
         [self, account](const std::vector<std::string>& a, AdminReply reply) {
             auto jid = account(a);
             if (!jid) {
                 reply(2, "USER HOST is not a local account\n");
                 return;
             }
             Element probe("vCard", std::string(kVcard));
             if (!vcard::setField(probe, a[2], a[3])) {
                 reply(2, "FIELD must be an element name such as FN or N.GIVEN\n");
                 return;
             }
             std::string field = a[2];
             std::string value = a[3];
             bool queued = self->pool->submit([self, jid = *jid, field, value,
                                               reply](storage::Connection& c) {
                 try {
                     storage::Transaction tx(c);
                     auto found = vcard::store::getForUpdate(c, jid.domain(), jid.local());
                     if (!found.account) {
                         reply(1, "no such account\n");
                         return;
                     }
                     std::optional<Element> card = found.vcard ? parseStored(found.vcard->xml) : std::nullopt;
                     if (found.vcard && !card) {
                         reply(1, "the stored vCard does not parse; not changed\n");
                         return;
                     }
                     Element updated = card ? std::move(*card) : Element("vCard", std::string(kVcard));
                     vcard::setField(updated, field, value);
                     vcard::Stored stored{serializeStored(updated), vcard::photoHash(updated).value_or("")};
                     if (static_cast<int64_t>(stored.xml.size()) > self->maxBytes) {
                         reply(1, "the vCard would exceed max_bytes\n");
                         return;
                     }
                     vcard::store::setInTransaction(c, jid.domain(), jid.local(), stored);
                     tx.commit();
                     self->remember(jid.bareStr(), stored.photoHash);
                     reply(0, "");
                 } catch (const storage::Error& e) {
                     reply(1, std::string("storage: ") + e.what() + "\n");
                 }
             });
             if (!queued) {
                 reply(1, "storage is busy\n");
             }
         }});
    return out;
}

VcardModule::VcardModule() : impl_(std::make_shared<Impl>()) {}
VcardModule::~VcardModule() = default;

std::vector<OptionSpec> VcardModule::options() {
    return {{"max_bytes", OptionSpec::Type::Integer, "65536", 256, 16777216,
             "bytes of serialized vCard stored per user; beyond it <not-acceptable/>"}};
}

Registrations VcardModule::start(ModuleContext& ctx) {
    impl_->router = &ctx.router;
    impl_->pool = &ctx.storage;
    impl_->maxBytes = ctx.options.integer("max_bytes");
    auto impl = impl_;
    Registrations regs;
    regs.features = {std::string(kVcard)};
    auto m = vcard::store::migrations();
    regs.migrations.assign(m.begin(), m.end());
    regs.iqHandlers.push_back({IqScope::Account, std::string(kVcard),
                               [impl](const IqRequest& req, const IqResponder& r) { impl->handle(req, r); }});
    regs.onHook(ctx.hooks.sessionBound, Band::Default, "vcard",
                [impl](const SessionEvent& e) { impl->onBound(e.jid); });
    regs.onHook(ctx.hooks.sessionClosed, Band::Default, "vcard",
                [impl](const SessionEvent& e) { impl->onClosed(e.jid); });
    // After policy (blocking) has had its say.
    regs.onHook(ctx.hooks.presenceOutbound, Band::Default, "vcard", [impl](UserSent& s) {
        impl->onPresence(s);
        return Flow::Continue;
    });
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "vcard", [impl](const AccountEvent& a) {
        impl->pool->submit([a](storage::Connection& c) {
            try {
                vcard::store::removeUser(c, a.host, a.username);
            } catch (const storage::Error& e) {
                spdlog::error("vcard: removing the vCard of {}@{} failed: {}", a.username, a.host, e.what());
            }
        });
    });
    regs.commands = impl_->commands();
    return regs;
}

}  // namespace xmppd::modules
