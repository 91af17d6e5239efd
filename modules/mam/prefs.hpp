#pragma once

// Archiving preferences (XEP-0313 §6 before 0.7; now XEP-0441, same
// <prefs xmlns='urn:xmpp:mam:2'/> element): a default mode plus JIDs whose
// messages are always or never archived.

#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "xmpp/element.hpp"
#include "xmpp/errors.hpp"
#include "xmpp/jid.hpp"

namespace xmppd::mam {

// 'roster' means "archive messages to/from JIDs in my roster" (XEP-0313 §7);
// the roster module answers that (SubscriptionQuery::Question::InRoster).
enum class DefaultMode { Always, Never, Roster };

std::string_view toString(DefaultMode mode);
std::optional<DefaultMode> parseDefaultMode(std::string_view text);

struct Prefs {
    DefaultMode mode = DefaultMode::Always;
    std::vector<std::string> always;  // normalised JIDs, sorted, unique
    std::vector<std::string> never;

    bool operator==(const Prefs&) const = default;
};

// Whether a message exchanged with peer is archived. A list entry matches
// the peer's full JID exactly or, when the entry is bare, any of its
// resources. 'never' wins over 'always' (a JID in both lists stays out).
// Default 'roster' leaves it to the roster: IfInRoster.
enum class Archive { No, Yes, IfInRoster };
Archive shouldArchive(const Prefs& prefs, const xmpp::Jid& peer);

// Parses <prefs/> of an iq set: <bad-request/> for a bad default or a
// malformed list, <jid-malformed/> for a bad JID.
std::variant<Prefs, xmpp::StanzaError> parsePrefs(const xmpp::Element& prefs);
xmpp::Element renderPrefs(const Prefs& prefs);

// Every user's stored preferences, in memory: the archive decides on the I/O
// thread, before the message is delivered (the stanza-id must be stamped on
// it or not), so it cannot ask the database. Only users who ever set their
// preferences have an entry; the rest use the configured default. Loaded
// once at start; each change is written through after its commit. Servers
// sharing one database do not see each other's changes until a restart.
class PrefsCache {
  public:
    std::optional<Prefs> find(const std::string& bareJid) const;
    void set(const std::string& bareJid, Prefs prefs);
    void erase(const std::string& bareJid);
    void replaceAll(std::unordered_map<std::string, Prefs> all);
    size_t size() const;

  private:
    mutable std::shared_mutex mutex_;
    std::unordered_map<std::string, Prefs> prefs_;
};

}  // namespace xmppd::mam
