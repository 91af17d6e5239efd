#include "modules/mam/mam_module.hpp"

#include <spdlog/spdlog.h>

#include <chrono>

#include "modules/mam/mam_impl.hpp"
#include "modules/mam/query.hpp"
#include "server/router.hpp"
#include "storage/pool.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/serializer.hpp"

namespace xmppd::modules {

using xmpp::Element;
using xmpp::Jid;

namespace {

// XEP-0313 §5.1.1: messages of type normal or chat with a body; XEP-0334:
// anything with a <store/> hint, never one with <no-store/> or
// <no-permanent-store/>; encrypted payloads without a body (OMEMO) are
// conversation too. Chat states, receipts and markers alone are not kept.
bool archivable(const Element& m) {
    std::string_view type = m.attr("type");
    if (m.name() != "message" || !(type.empty() || type == "normal" || type == "chat")) {
        return false;
    }
    if (m.findChild("no-store", "urn:xmpp:hints") || m.findChild("no-permanent-store", "urn:xmpp:hints")) {
        return false;
    }
    return m.findChild("body", m.ns()) || m.findChild("store", "urn:xmpp:hints") ||
           m.firstChildInNs("urn:xmpp:omemo:2") || m.firstChildInNs("eu.siacs.conversations.axolotl");
}

std::string parseDays(const std::string& text, int64_t& days) {
    try {
        size_t used = 0;
        days = std::stoll(text, &used);
        if (used == text.size() && days >= 0 && days <= 1000000) {
            return {};
        }
    } catch (const std::exception&) {
    }
    return "DAYS must be a non-negative integer\n";
}

}  // namespace

// ---- archiving ----

mam::Prefs MamModule::Impl::prefsOf(const std::string& bareJid) const {
    if (auto p = prefs.find(bareJid)) {
        return *p;
    }
    return mam::Prefs{defaultMode, {}, {}};
}

// The sender's copy. A message to one's own account is archived once, on the
// way in.
Flow MamModule::Impl::onUserSent(UserSent& sent) {
    Element& m = *sent.stanza;
    if (!archivable(m) || !m.hasAttr("to")) {
        return Flow::Continue;
    }
    auto to = Jid::parse(m.attr("to"));
    Jid owner = sent.from.bare();
    if (!to || to->bare() == owner) {
        return Flow::Continue;
    }
    auto decision = mam::shouldArchive(prefsOf(owner.str()), *to);
    if (decision == mam::Archive::No) {
        return Flow::Continue;
    }
    // The id is taken now, so the archive keeps the order of sending.
    mam::NewMessage copy(owner.domain(), owner.local(), ids.next(mam::nowMillis()), to->bareStr(),
                         to->resource(), mam::Direction::Out, xmpp::toString(m, xmpp::ns::kClient));
    if (decision == mam::Archive::Yes) {
        append(std::move(copy));
        return Flow::Continue;
    }
    // Nothing is stamped on an outgoing message: the copy waits for the
    // roster's answer and the message goes on at once.
    auto self = shared_from_this();
    askRoster(owner, to->bare(), [self, copy = std::move(copy)](bool inRoster) mutable {
        if (inRoster) {
            self->append(std::move(copy));
        }
    });
    return Flow::Continue;
}

// The recipient's copy, stamped with its archive id before delivery (and
// before offline storage, which keeps the stamp).
Flow MamModule::Impl::onInbound(StanzaInbound& in) {
    Element& m = *in.stanza;
    if (m.name() != "message") {
        return Flow::Continue;
    }
    if (tlsRoutedAgain) {
        tlsRoutedAgain = false;  // decided before it waited; not for what its routing sends
        return Flow::Continue;
    }
    Jid owner = in.to.bare();
    std::string by = owner.str();
    mam::removeStanzaIds(m, by);
    if (!archivable(m)) {
        return Flow::Continue;
    }
    auto decision = mam::shouldArchive(prefsOf(by), in.from);
    if (decision == mam::Archive::IfInRoster && in.from.bare() == owner) {
        decision = mam::Archive::Yes;  // a note to oneself
    }
    if (decision == mam::Archive::No) {
        return Flow::Continue;
    }
    if (decision == mam::Archive::Yes) {
        stampAndAppend(m, owner, in.from);
        return Flow::Continue;
    }
    // Default 'roster' (XEP-0313 §7): whether the message carries our
    // stanza-id depends on the answer, which comes from the roster's storage
    // lane. The message waits for it off the I/O thread and is routed again
    // from there with the sender's token (its 'h' waits too). The lane keeps
    // one sender's messages in order.
    auto self = shared_from_this();
    auto held = std::make_shared<Element>(std::move(m));
    Jid from = in.from;
    HandledToken handled = in.handled;
    askRoster(owner, from.bare(), [self, held, owner, from, handled](bool inRoster) {
        if (inRoster) {
            self->stampAndAppend(*held, owner, from);
        }
        tlsRoutedAgain = true;
        self->router->route(std::move(*held), handled);
        tlsRoutedAgain = false;
    });
    return Flow::Stop;
}

thread_local bool MamModule::Impl::tlsRoutedAgain = false;

void MamModule::Impl::stampAndAppend(Element& m, const Jid& owner, const Jid& from) {
    int64_t id = ids.next(mam::nowMillis());
    mam::stampStanzaId(m, owner.str(), id);
    append(mam::NewMessage{owner.domain(), owner.local(), id, from.bareStr(), from.resource(),
                           mam::Direction::In, xmpp::toString(m, xmpp::ns::kClient)});
}

void MamModule::Impl::askRoster(const Jid& user, const Jid& contact, std::function<void(bool)> then) {
    SubscriptionQuery query{user, contact,
                            [user, contact, then](std::optional<bool> inRoster) {
                                if (!inRoster) {
                                    // Storage could not tell: keeping a
                                    // stranger's message is the lesser harm
                                    // than losing a contact's.
                                    spdlog::warn("mam: roster of {} not read, archiving the message with {}",
                                                 user.str(), contact.str());
                                }
                                then(inRoster.value_or(true));
                            },
                            SubscriptionQuery::Question::InRoster};
    if (hooks->subscriptionQuery.run(query) == Flow::Continue) {
        then(false);  // no roster module: no one is in a roster
    }
}

void MamModule::Impl::append(mam::NewMessage m) {
    std::lock_guard lock(mutex);
    if (pending.size() >= kMaxPending) {
        if (!overflowing) {
            overflowing = true;
            spdlog::error(
                "mam: {} messages wait for the database; not archiving new ones until it catches up",
                pending.size());
        }
        return;
    }
    overflowing = false;
    pending.push_back(std::move(m));
    if (!scheduled) {
        scheduled = true;
        schedule();
    }
}

void MamModule::Impl::schedule() {
    auto self = shared_from_this();
    if (!pool->submit([self](storage::Connection& c) { self->writeBatch(c); })) {
        // The storage queue is full (or the server is stopping). The messages
        // themselves are delivered; only their archive copies are lost.
        spdlog::error("mam: storage queue full, {} messages not archived", pending.size());
        pending.clear();
        scheduled = false;
    }
}

void MamModule::Impl::writeBatch(storage::Connection& c) {
    writeSome(c);
    std::lock_guard lock(mutex);
    if (!pending.empty()) {
        schedule();
    } else {
        scheduled = false;
    }
}

void MamModule::Impl::flush(storage::Connection& c) {
    uint64_t target;
    {
        std::lock_guard lock(mutex);
        target = batchesTaken;
    }
    while (writeSome(c)) {
    }
    // Only batches taken before we started: later ones cannot hold an id
    // the caller was given, and waiting for them could last forever.
    std::unique_lock lock(mutex);
    written.wait(lock, [&] { return writing.empty() || *writing.begin() > target; });
}

bool MamModule::Impl::writeSome(storage::Connection& c) {
    std::vector<mam::NewMessage> batch;
    uint64_t seq;
    {
        std::lock_guard lock(mutex);
        if (pending.empty()) {
            return false;
        }
        size_t n = std::min(pending.size(), static_cast<size_t>(batchSize));
        batch.assign(std::make_move_iterator(pending.begin()), std::make_move_iterator(pending.begin() + n));
        pending.erase(pending.begin(), pending.begin() + n);
        seq = ++batchesTaken;
        writing.insert(seq);
    }
    writeMessages(c, batch);
    {
        std::lock_guard lock(mutex);
        writing.erase(seq);
    }
    written.notify_all();
    return true;
}

void MamModule::Impl::writeMessages(storage::Connection& c, const std::vector<mam::NewMessage>& batch) {
    try {
        mam::store::append(c, batch, maxPerUser, &counts);
        return;
    } catch (const storage::Error& e) {
        if (!storage::isUniqueViolation(e)) {
            spdlog::error("mam: archiving {} messages failed: {}", batch.size(), e.what());
            return;
        }
    }
    // An id collided with one another server sharing the database gave out:
    // store the others one by one.
    for (const auto& m : batch) {
        try {
            mam::store::append(c, std::span(&m, 1), maxPerUser, &counts);
        } catch (const storage::Error& e) {
            spdlog::error("mam: archiving message {} of {}@{} failed: {}", mam::renderId(m.id), m.user,
                          m.host, e.what());
        }
    }
}

// ---- retention ----

void MamModule::Impl::submitPurge() {
    auto self = shared_from_this();
    int64_t cutoff = mam::nowMillis() - retentionDays * 86400 * 1000;
    pool->submit([self, cutoff](storage::Connection& c) {
        try {
            int64_t n = mam::store::removeOlderThan(c, cutoff);
            self->counts.clear();
            spdlog::info("mam: retention purge removed {} messages older than {} days", n,
                         self->retentionDays);
        } catch (const storage::Error& e) {
            spdlog::error("mam: retention purge failed: {}", e.what());
        }
    });
}

// A thread that only submits a purge job at start and every hour; it never
// touches the database itself.
void MamModule::Impl::startPurger() {
    purger = std::thread([this] {
        std::unique_lock lock(purgeMutex);
        while (!purgeStopping) {
            submitPurge();
            purgeWake.wait_for(lock, std::chrono::hours(1), [this] { return purgeStopping; });
        }
    });
}

void MamModule::Impl::stopPurger() {
    {
        std::lock_guard lock(purgeMutex);
        purgeStopping = true;
    }
    purgeWake.notify_all();
    if (purger.joinable()) {
        purger.join();
    }
}

// ---- the module ----

MamModule::MamModule() : impl_(std::make_shared<Impl>()) {}

MamModule::~MamModule() {
    impl_->stopPurger();
}

std::vector<OptionSpec> MamModule::options() {
    return {
        {"default_mode", OptionSpec::Type::String, "always", 0, 0,
         "archive by default: always, never or roster (contacts in the roster only)"},
        {"max_messages_per_user", OptionSpec::Type::Integer, "100000", 0, INT64_MAX,
         "messages kept per user, the oldest go first; 0 = no limit"},
        {"retention_days", OptionSpec::Type::Integer, "0", 0, 1000000,
         "days a message is kept, purged hourly; 0 = forever"},
        {"max_page_size", OptionSpec::Type::Integer, "50", 1, 250,
         "results per query page (the client's <max/> is capped to it)"},
        {"batch_size", OptionSpec::Type::Integer, "256", 1, 100000,
         "messages written per transaction (group commit)"},
    };
}

Registrations MamModule::start(ModuleContext& ctx) {
    auto impl = impl_;
    impl->router = &ctx.router;
    impl->pool = &ctx.storage;
    impl->hooks = &ctx.hooks;
    auto mode = mam::parseDefaultMode(ctx.options.string("default_mode"));
    if (!mode) {
        throw std::runtime_error("modules.mam.default_mode: expected always, never or roster, got '" +
                                 ctx.options.string("default_mode") + "'");
    }
    impl->defaultMode = *mode;
    impl->maxPerUser = ctx.options.integer("max_messages_per_user");
    impl->retentionDays = ctx.options.integer("retention_days");
    impl->maxPageSize = ctx.options.integer("max_page_size");
    impl->batchSize = ctx.options.integer("batch_size");

    // The archive decides on the I/O threads, so every stored preference is
    // in memory before the first message (prefs.hpp). Our migrations run here
    // for that; the host's run afterwards finds nothing to do.
    ctx.storage.runSync([impl](storage::Connection& c) {
        storage::migrate(c, mam::store::migrations());
        impl->prefs.replaceAll(mam::store::loadAllPrefs(c));
    });

    Registrations regs;
    auto m = mam::store::migrations();
    regs.migrations.assign(m.begin(), m.end());
    regs.onHook(ctx.hooks.userSent, Band::Store, "mam", [impl](UserSent& s) { return impl->onUserSent(s); });
    // The recipient's copy: after policy (blocking) had its say, but before
    // anything copies the message on (carbons run in the Default band), so
    // that every copy carries our stanza-id and none a forged one
    // (XEP-0313 §3.5: carbons SHOULD include it).
    regs.onHook(
        ctx.hooks.stanzaInbound, Band::Default, "mam",
        [impl](StanzaInbound& in) { return impl->onInbound(in); }, -50);
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "mam", [impl](const AccountEvent& a) {
        impl->prefs.erase(a.username + "@" + a.host);
        impl->pool->submit([impl, a](storage::Connection& c) {
            try {
                impl->flush(c);  // nothing of the account may be written after its removal
                mam::store::removeUser(c, a.host, a.username);
                impl->counts.clear();
            } catch (const storage::Error& e) {
                spdlog::error("mam: removing the archive of {}@{} failed: {}", a.username, a.host, e.what());
            }
        });
    });
    regs.iqHandlers.push_back({IqScope::Account, std::string(mam::kNsMam),
                               [impl](const IqRequest& req, const IqResponder& r) { impl->onIq(req, r); }});
    // Nothing else answers disco#info for an account yet; when a second
    // module needs account features, this moves to the disco module.
    regs.iqHandlers.push_back(
        {IqScope::Account, std::string(xmpp::ns::kDiscoInfo),
         [impl](const IqRequest& req, const IqResponder& r) { impl->onDiscoInfo(req, r); }});

    storage::Pool* pool = &ctx.storage;
    regs.commands.push_back({"delete_old_mam_messages",
                             {"DAYS"},
                             "Deletes archived messages (XEP-0313) older than DAYS days",
                             [impl, pool](const std::vector<std::string>& a, AdminReply reply) {
                                 int64_t days = 0;
                                 if (auto err = parseDays(a[0], days); !err.empty()) {
                                     reply(2, err);
                                     return;
                                 }
                                 bool queued = pool->submit([impl, days, reply](storage::Connection& c) {
                                     try {
                                         impl->flush(c);
                                         auto n = mam::store::removeOlderThan(
                                             c, mam::nowMillis() - days * 86400 * 1000);
                                         impl->counts.clear();
                                         reply(0, "Deleted " + std::to_string(n) + " messages\n");
                                     } catch (const storage::Error& e) {
                                         reply(1, std::string("storage: ") + e.what() + "\n");
                                     }
                                 });
                                 if (!queued) {
                                     reply(1, "storage: queue full\n");
                                 }
                             }});
    regs.commands.push_back({"get_mam_count",
                             {"USER", "HOST"},
                             "Number of archived messages (XEP-0313) of a user",
                             [impl, pool](const std::vector<std::string>& a, AdminReply reply) {
                                 bool queued = pool->submit([impl, a, reply](storage::Connection& c) {
                                     try {
                                         impl->flush(c);
                                         reply(0, std::to_string(mam::store::count(c, a[1], a[0])) + "\n");
                                     } catch (const storage::Error& e) {
                                         reply(1, std::string("storage: ") + e.what() + "\n");
                                     }
                                 });
                                 if (!queued) {
                                     reply(1, "storage: queue full\n");
                                 }
                             }});
    if (impl->retentionDays > 0) {
        impl->startPurger();
    }
    return regs;
}

void MamModule::stop() {
    impl_->stopPurger();
}

}  // namespace xmppd::modules
