#pragma once

#include <string_view>

namespace xmppd::roster {

// RFC 6121 Appendix A: a user's subscription state for one contact.
enum class Sub { None, To, From, Both };

struct SubState {
    Sub sub = Sub::None;
    bool pendingOut = false;   // the user asked the contact (ask='subscribe')
    bool pendingIn = false;    // the contact asked the user, not yet answered
    bool preApproved = false;  // RFC 6121 §3.4: the user approved in advance
    bool operator==(const SubState&) const = default;
};

enum class SubType { Subscribe, Subscribed, Unsubscribe, Unsubscribed };

struct Outcome {
    SubState next;
    bool changed = false;
    // Outbound: route the stanza to the contact. Inbound: deliver it to the user.
    bool forward = false;
    // Inbound subscribe that is already (or pre-) approved: the server answers
    // <presence type='subscribed'/> on the user's behalf (RFC 6121 §3.1.3).
    bool autoReplySubscribed = false;
};

// The user sends a subscription stanza of this type to the contact (A.2).
Outcome outbound(SubState state, SubType type);
// The contact sends a subscription stanza of this type to the user (A.3).
Outcome inbound(SubState state, SubType type);

bool hasTo(Sub s);
bool hasFrom(Sub s);
std::string_view toString(Sub s);
Sub subFromString(std::string_view s);
bool parseSubType(std::string_view type, SubType& out);

}  // namespace xmppd::roster
