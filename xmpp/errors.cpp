#include "xmpp/errors.hpp"

#include <array>

#include "xmpp/ns.hpp"

namespace xmpp {

namespace {

constexpr std::array kStreamNames = {
    "bad-format",
    "bad-namespace-prefix",
    "conflict",
    "connection-timeout",
    "host-gone",
    "host-unknown",
    "improper-addressing",
    "internal-server-error",
    "invalid-from",
    "invalid-namespace",
    "invalid-xml",
    "not-authorized",
    "not-well-formed",
    "policy-violation",
    "remote-connection-failed",
    "reset",
    "resource-constraint",
    "restricted-xml",
    "see-other-host",
    "system-shutdown",
    "undefined-condition",
    "unsupported-encoding",
    "unsupported-feature",
    "unsupported-stanza-type",
    "unsupported-version",
};
static_assert(kStreamNames.size() == static_cast<size_t>(StreamCondition::UnsupportedVersion) + 1);

struct StanzaInfo {
    const char* name;
    StanzaErrorType type;
};

constexpr std::array kStanzaInfo = {
    StanzaInfo{"bad-request", StanzaErrorType::Modify},
    StanzaInfo{"conflict", StanzaErrorType::Cancel},
    StanzaInfo{"feature-not-implemented", StanzaErrorType::Cancel},
    StanzaInfo{"forbidden", StanzaErrorType::Auth},
    StanzaInfo{"gone", StanzaErrorType::Cancel},
    StanzaInfo{"internal-server-error", StanzaErrorType::Cancel},
    StanzaInfo{"item-not-found", StanzaErrorType::Cancel},
    StanzaInfo{"jid-malformed", StanzaErrorType::Modify},
    StanzaInfo{"not-acceptable", StanzaErrorType::Modify},
    StanzaInfo{"not-allowed", StanzaErrorType::Cancel},
    StanzaInfo{"not-authorized", StanzaErrorType::Auth},
    StanzaInfo{"policy-violation", StanzaErrorType::Modify},
    StanzaInfo{"recipient-unavailable", StanzaErrorType::Wait},
    StanzaInfo{"redirect", StanzaErrorType::Modify},
    StanzaInfo{"registration-required", StanzaErrorType::Auth},
    StanzaInfo{"remote-server-not-found", StanzaErrorType::Cancel},
    StanzaInfo{"remote-server-timeout", StanzaErrorType::Wait},
    StanzaInfo{"resource-constraint", StanzaErrorType::Wait},
    StanzaInfo{"service-unavailable", StanzaErrorType::Cancel},
    StanzaInfo{"subscription-required", StanzaErrorType::Auth},
    StanzaInfo{"undefined-condition", StanzaErrorType::Cancel},
    StanzaInfo{"unexpected-request", StanzaErrorType::Wait},
};
static_assert(kStanzaInfo.size() == static_cast<size_t>(StanzaCondition::UnexpectedRequest) + 1);

}  // namespace

std::string_view toString(StreamCondition c) {
    return kStreamNames[static_cast<size_t>(c)];
}

Element StreamError::toElement() const {
    Element e("error", std::string(ns::kStream));
    e.addChild(std::string(toString(condition)), std::string(ns::kStreams));
    if (!text.empty()) {
        e.addChild("text", std::string(ns::kStreams)).addText(text);
    }
    return e;
}

std::string_view toString(StanzaCondition c) {
    return kStanzaInfo[static_cast<size_t>(c)].name;
}

std::string_view toString(StanzaErrorType t) {
    switch (t) {
        case StanzaErrorType::Auth:
            return "auth";
        case StanzaErrorType::Cancel:
            return "cancel";
        case StanzaErrorType::Continue:
            return "continue";
        case StanzaErrorType::Modify:
            return "modify";
        case StanzaErrorType::Wait:
            return "wait";
    }
    return "cancel";
}

std::optional<StanzaCondition> stanzaConditionFromString(std::string_view name) {
    for (size_t i = 0; i < kStanzaInfo.size(); ++i) {
        if (name == kStanzaInfo[i].name) {
            return static_cast<StanzaCondition>(i);
        }
    }
    return std::nullopt;
}

StanzaErrorType defaultType(StanzaCondition c) {
    return kStanzaInfo[static_cast<size_t>(c)].type;
}

Element StanzaError::toElement(std::string_view stanzaNs) const {
    Element e("error", std::string(stanzaNs));
    e.setAttr("type", toString(type));
    e.addChild(std::string(toString(condition)), std::string(ns::kStanzas));
    if (!text.empty()) {
        e.addChild("text", std::string(ns::kStanzas)).setAttr("xml:lang", "en").addText(text);
    }
    return e;
}

Element makeErrorReply(const Element& stanza, const StanzaError& error) {
    Element reply(stanza.name(), stanza.ns());
    if (auto* from = stanza.findAttr("from")) {
        reply.setAttr("to", *from);
    }
    if (auto* to = stanza.findAttr("to")) {
        reply.setAttr("from", *to);
    }
    if (auto* id = stanza.findAttr("id")) {
        reply.setAttr("id", *id);
    }
    reply.setAttr("type", "error");
    if (stanza.name() != "iq") {
        for (const auto& child : stanza.children()) {
            if (!child.isText() && !child.is("error", stanza.ns())) {
                reply.addChild(child);
            }
        }
    }
    reply.addChild(error.toElement(stanza.ns()));
    return reply;
}

Element makeIqResult(const Element& iq) {
    Element reply("iq", iq.ns());
    if (auto* from = iq.findAttr("from")) {
        reply.setAttr("to", *from);
    }
    if (auto* to = iq.findAttr("to")) {
        reply.setAttr("from", *to);
    }
    reply.setAttr("id", iq.attr("id"));
    reply.setAttr("type", "result");
    return reply;
}

}  // namespace xmpp
