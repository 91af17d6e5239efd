#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "xmpp/element.hpp"

namespace xmpp {

// RFC 6120 §4.9.3: stream error conditions.
enum class StreamCondition {
    BadFormat,
    BadNamespacePrefix,
    Conflict,
    ConnectionTimeout,
    HostGone,
    HostUnknown,
    ImproperAddressing,
    InternalServerError,
    InvalidFrom,
    InvalidNamespace,
    InvalidXml,
    NotAuthorized,
    NotWellFormed,
    PolicyViolation,
    RemoteConnectionFailed,
    Reset,
    ResourceConstraint,
    RestrictedXml,
    SeeOtherHost,
    SystemShutdown,
    UndefinedCondition,
    UnsupportedEncoding,
    UnsupportedFeature,
    UnsupportedStanzaType,
    UnsupportedVersion,
};

std::string_view toString(StreamCondition c);

struct StreamError {
    StreamCondition condition = StreamCondition::UndefinedCondition;
    std::string text;

    // <stream:error> is in the streams namespace; its child in the
    // urn:ietf:params:xml:ns:xmpp-streams namespace (RFC 6120 §4.9.2).
    Element toElement() const;
};

// RFC 6120 §8.3.3: stanza error conditions.
enum class StanzaCondition {
    BadRequest,
    Conflict,
    FeatureNotImplemented,
    Forbidden,
    Gone,
    InternalServerError,
    ItemNotFound,
    JidMalformed,
    NotAcceptable,
    NotAllowed,
    NotAuthorized,
    PolicyViolation,
    RecipientUnavailable,
    Redirect,
    RegistrationRequired,
    RemoteServerNotFound,
    RemoteServerTimeout,
    ResourceConstraint,
    ServiceUnavailable,
    SubscriptionRequired,
    UndefinedCondition,
    UnexpectedRequest,
};

// RFC 6120 §8.3.2: error types.
enum class StanzaErrorType { Auth, Cancel, Continue, Modify, Wait };

std::string_view toString(StanzaCondition c);
std::string_view toString(StanzaErrorType t);
std::optional<StanzaCondition> stanzaConditionFromString(std::string_view name);
// The type RFC 6120 §8.3.3 gives in its examples for each condition.
StanzaErrorType defaultType(StanzaCondition c);

struct StanzaError {
    StanzaCondition condition = StanzaCondition::UndefinedCondition;
    StanzaErrorType type = StanzaErrorType::Cancel;
    std::string text;

    StanzaError() = default;
    StanzaError(StanzaCondition c, std::string t = {})
        : condition(c), type(defaultType(c)), text(std::move(t)) {}
    StanzaError(StanzaCondition c, StanzaErrorType ty, std::string t)
        : condition(c), type(ty), text(std::move(t)) {}

    Element toElement(std::string_view stanzaNs) const;
};

// Builds the error reply to a stanza (RFC 6120 §8.3.1): same name and id,
// to/from swapped, type='error', the original payload kept for message and
// presence (so the sender can tell which one failed), and the <error/> child.
// stanzaNs is the namespace of the stanza ("jabber:client").
Element makeErrorReply(const Element& stanza, const StanzaError& error);

// An empty result to an iq (RFC 6120 §8.2.3).
Element makeIqResult(const Element& iq);

}  // namespace xmpp
