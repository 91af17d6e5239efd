#pragma once

// The archive module's state, shared by mam_module.cpp (hooks, writer,
// purge, admin) and mam_iq.cpp (the iq protocol). Private to modules/mam.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "modules/mam/ids.hpp"
#include "modules/mam/mam_module.hpp"
#include "modules/mam/prefs.hpp"
#include "modules/mam/store.hpp"

namespace storage {
class Pool;
}  // namespace storage

namespace xmppd::modules {

struct MamModule::Impl : std::enable_shared_from_this<MamModule::Impl> {
    Router* router = nullptr;
    storage::Pool* pool = nullptr;
    Hooks* hooks = nullptr;

    mam::DefaultMode defaultMode = mam::DefaultMode::Always;
    int64_t maxPerUser = 100000;
    int64_t retentionDays = 0;
    int64_t maxPageSize = 50;
    int64_t batchSize = 256;

    mam::IdGenerator ids;
    mam::PrefsCache prefs;
    mam::ArchiveCounts counts;

    // ---- archiving (mam_module.cpp) ----
    mam::Prefs prefsOf(const std::string& bareJid) const;
    Flow onUserSent(UserSent& sent);
    Flow onInbound(StanzaInbound& in);
    void stampAndAppend(xmpp::Element& m, const xmpp::Jid& owner, const xmpp::Jid& from);
    // Whether contact is in user's roster, answered later (on a storage
    // thread) by the roster module; no roster module: false.
    void askRoster(const xmpp::Jid& user, const xmpp::Jid& contact, std::function<void(bool)> then);
    // Set while a message that waited for the roster is routed again.
    static thread_local bool tlsRoutedAgain;

    // Group commit, as in modules/offline: messages that arrive while a batch
    // is being written wait for the next one; each batch is one transaction.
    std::mutex mutex;
    std::vector<mam::NewMessage> pending;
    bool scheduled = false;
    // Bounded: when the database falls this far behind, new archive copies
    // are dropped (and logged) rather than memory growing without end.
    static constexpr size_t kMaxPending = 100000;
    bool overflowing = false;
    // Batches taken but not yet committed (PostgreSQL writes on several
    // threads), by sequence number; flush() waits for those before it.
    uint64_t batchesTaken = 0;
    std::set<uint64_t> writing;
    std::condition_variable written;
    void append(mam::NewMessage m);
    void schedule();  // with mutex held
    void writeBatch(storage::Connection& c);
    // Takes up to batchSize pending messages and writes them; false if none.
    bool writeSome(storage::Connection& c);
    void writeMessages(storage::Connection& c, const std::vector<mam::NewMessage>& batch);
    // Writes everything pending on this connection and waits for batches
    // other storage threads are writing: a query sees every message whose
    // stanza-id was handed out before it started.
    void flush(storage::Connection& c);

    // ---- retention (mam_module.cpp) ----
    std::mutex purgeMutex;
    std::condition_variable purgeWake;
    bool purgeStopping = false;
    std::thread purger;
    void startPurger();
    void stopPurger();
    void submitPurge();

    // ---- the iq protocol (mam_iq.cpp) ----
    void onIq(const IqRequest& req, const IqResponder& r);
    void onDiscoInfo(const IqRequest& req, const IqResponder& r) const;
    void runQuery(const IqRequest& req, const IqResponder& r);
    void setPrefs(const IqRequest& req, const IqResponder& r);
    void getMetadata(const IqRequest& req, const IqResponder& r);
};

}  // namespace xmppd::modules
