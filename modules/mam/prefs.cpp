#include "modules/mam/prefs.hpp"

#include <algorithm>
#include <mutex>

namespace xmppd::mam {

using xmpp::Element;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

constexpr std::string_view kNs = "urn:xmpp:mam:2";

bool listed(const std::vector<std::string>& list, const xmpp::Jid& peer) {
    return std::binary_search(list.begin(), list.end(), peer.str()) ||
           (!peer.isBare() && std::binary_search(list.begin(), list.end(), peer.bareStr()));
}

// Reads <always/> or <never/>: a list of <jid/> children.
std::optional<StanzaError> parseList(const Element* list, std::vector<std::string>& out) {
    if (list == nullptr) {
        return std::nullopt;
    }
    for (const auto& child : list->children()) {
        if (child.isText()) {
            continue;
        }
        if (!child.is("jid", kNs)) {
            return StanzaError(StanzaCondition::BadRequest, "unexpected <" + child.name() + "/> in the list");
        }
        auto jid = xmpp::Jid::parse(child.text());
        if (!jid) {
            return StanzaError(StanzaCondition::JidMalformed, "not a JID: " + child.text());
        }
        out.push_back(jid->str());
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return std::nullopt;
}

void renderList(Element& parent, const char* name, const std::vector<std::string>& jids) {
    Element& list = parent.addChild(name, std::string(kNs));
    for (const auto& jid : jids) {
        list.addChild("jid", std::string(kNs)).addText(jid);
    }
}

}  // namespace

std::string_view toString(DefaultMode mode) {
    switch (mode) {
        case DefaultMode::Always:
            return "always";
        case DefaultMode::Never:
            return "never";
        case DefaultMode::Roster:
            return "roster";
    }
    return "always";
}

std::optional<DefaultMode> parseDefaultMode(std::string_view text) {
    if (text == "always") {
        return DefaultMode::Always;
    }
    if (text == "never") {
        return DefaultMode::Never;
    }
    if (text == "roster") {
        return DefaultMode::Roster;
    }
    return std::nullopt;
}

Archive shouldArchive(const Prefs& prefs, const xmpp::Jid& peer) {
    if (listed(prefs.never, peer)) {
        return Archive::No;
    }
    if (listed(prefs.always, peer)) {
        return Archive::Yes;
    }
    switch (prefs.mode) {
        case DefaultMode::Always:
            return Archive::Yes;
        case DefaultMode::Never:
            return Archive::No;
        case DefaultMode::Roster:
            return Archive::IfInRoster;
    }
    return Archive::Yes;
}

std::variant<Prefs, StanzaError> parsePrefs(const Element& element) {
    Prefs prefs;
    auto mode = parseDefaultMode(element.attr("default"));
    if (!mode) {
        return StanzaError(StanzaCondition::BadRequest, "default must be always, never or roster");
    }
    prefs.mode = *mode;
    if (auto e = parseList(element.findChild("always", kNs), prefs.always)) {
        return *e;
    }
    if (auto e = parseList(element.findChild("never", kNs), prefs.never)) {
        return *e;
    }
    return prefs;
}

Element renderPrefs(const Prefs& prefs) {
    Element element("prefs", std::string(kNs));
    element.setAttr("default", toString(prefs.mode));
    renderList(element, "always", prefs.always);
    renderList(element, "never", prefs.never);
    return element;
}

std::optional<Prefs> PrefsCache::find(const std::string& bareJid) const {
    std::shared_lock lock(mutex_);
    auto it = prefs_.find(bareJid);
    if (it == prefs_.end()) {
        return std::nullopt;
    }
    return it->second;
}

void PrefsCache::set(const std::string& bareJid, Prefs prefs) {
    std::unique_lock lock(mutex_);
    prefs_[bareJid] = std::move(prefs);
}

void PrefsCache::erase(const std::string& bareJid) {
    std::unique_lock lock(mutex_);
    prefs_.erase(bareJid);
}

void PrefsCache::replaceAll(std::unordered_map<std::string, Prefs> all) {
    std::unique_lock lock(mutex_);
    prefs_ = std::move(all);
}

size_t PrefsCache::size() const {
    std::shared_lock lock(mutex_);
    return prefs_.size();
}

}  // namespace xmppd::mam
