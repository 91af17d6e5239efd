#include "modules/roster/subscription.hpp"

namespace xmppd::roster {

bool hasTo(Sub s) {
    return s == Sub::To || s == Sub::Both;
}
bool hasFrom(Sub s) {
    return s == Sub::From || s == Sub::Both;
}

namespace {

Sub withTo(Sub s, bool to) {
    bool from = hasFrom(s);
    return to ? (from ? Sub::Both : Sub::To) : (from ? Sub::From : Sub::None);
}

Sub withFrom(Sub s, bool from) {
    bool to = hasTo(s);
    return from ? (to ? Sub::Both : Sub::From) : (to ? Sub::To : Sub::None);
}

Outcome result(SubState before, SubState after, bool forward, bool autoReply = false) {
    return Outcome{after, !(before == after), forward, autoReply};
}

}  // namespace

Outcome outbound(SubState s, SubType type) {
    SubState n = s;
    switch (type) {
        case SubType::Subscribe:
            // A.2.1: ask unless already subscribed to the contact.
            if (hasTo(s.sub)) {
                return result(s, n, false);
            }
            n.pendingOut = true;
            return result(s, n, true);
        case SubType::Unsubscribe:
            // A.2.2: drop 'to' and any outstanding request.
            n.sub = withTo(s.sub, false);
            n.pendingOut = false;
            return result(s, n, true);
        case SubType::Subscribed:
            // A.2.3: approve a pending request, or pre-approve (§3.4).
            if (hasFrom(s.sub)) {
                return result(s, n, false);
            }
            if (s.pendingIn) {
                n.sub = withFrom(s.sub, true);
                n.pendingIn = false;
                n.preApproved = false;
                return result(s, n, true);
            }
            n.preApproved = true;
            return result(s, n, false);
        case SubType::Unsubscribed:
            // A.2.4: cancel 'from', deny a pending request, cancel a pre-approval.
            n.sub = withFrom(s.sub, false);
            n.pendingIn = false;
            n.preApproved = false;
            return result(s, n, hasFrom(s.sub) || s.pendingIn);
    }
    return result(s, n, false);
}

Outcome inbound(SubState s, SubType type) {
    SubState n = s;
    switch (type) {
        case SubType::Subscribe:
            // A.3.1: already approved: answer for the user, nothing to show.
            if (hasFrom(s.sub)) {
                return result(s, n, false, true);
            }
            if (s.preApproved) {
                n.sub = withFrom(s.sub, true);
                n.preApproved = false;
                n.pendingIn = false;
                return result(s, n, false, true);
            }
            if (s.pendingIn) {
                return result(s, n, false);  // already waiting for the user's answer
            }
            n.pendingIn = true;
            return result(s, n, true);
        case SubType::Unsubscribe:
            // A.3.2: the contact no longer wants our presence.
            if (!hasFrom(s.sub) && !s.pendingIn) {
                return result(s, n, false);
            }
            n.sub = withFrom(s.sub, false);
            n.pendingIn = false;
            return result(s, n, true);
        case SubType::Subscribed:
            // A.3.3: only meaningful while we are asking.
            if (!s.pendingOut) {
                return result(s, n, false);
            }
            n.sub = withTo(s.sub, true);
            n.pendingOut = false;
            return result(s, n, true);
        case SubType::Unsubscribed:
            // A.3.4: the contact refused or revoked our subscription.
            if (!hasTo(s.sub) && !s.pendingOut) {
                return result(s, n, false);
            }
            n.sub = withTo(s.sub, false);
            n.pendingOut = false;
            return result(s, n, true);
    }
    return result(s, n, false);
}

std::string_view toString(Sub s) {
    switch (s) {
        case Sub::None:
            return "none";
        case Sub::To:
            return "to";
        case Sub::From:
            return "from";
        case Sub::Both:
            return "both";
    }
    return "none";
}

Sub subFromString(std::string_view s) {
    if (s == "to") {
        return Sub::To;
    }
    if (s == "from") {
        return Sub::From;
    }
    if (s == "both") {
        return Sub::Both;
    }
    return Sub::None;
}

bool parseSubType(std::string_view type, SubType& out) {
    if (type == "subscribe") {
        out = SubType::Subscribe;
    } else if (type == "subscribed") {
        out = SubType::Subscribed;
    } else if (type == "unsubscribe") {
        out = SubType::Unsubscribe;
    } else if (type == "unsubscribed") {
        out = SubType::Unsubscribed;
    } else {
        return false;
    }
    return true;
}

}  // namespace xmppd::roster
