#pragma once

// XEP-0198 §4 counter arithmetic, apart from the session so that the
// wrap-around at 2^32 can be tested without sending 2^32 stanzas.

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>

namespace xmppd::sm {

// The 'h' we report: how many stanzas, counted from <enable/>, are handled
// with none before them still pending. received is our running 64-bit
// count; unhandled holds the sequence numbers (1-based) still pending. On the
// wire 'h' is the 32-bit value, wrapping to 0 after 2^32 - 1.
inline uint32_t handledCount(uint64_t received, const std::set<uint64_t>& unhandled) {
    uint64_t handled = unhandled.empty() ? received : *unhandled.begin() - 1;
    return static_cast<uint32_t>(handled);
}

// How many of our queued stanzas a client's h acknowledges beyond lastAcked,
// in modular arithmetic (h may have wrapped past 0); nullopt when that is
// more than we have queued (§4 handled-count-too-high, or an h from before).
inline std::optional<uint32_t> newlyAcked(uint32_t h, uint32_t lastAcked, size_t queued) {
    uint32_t n = h - lastAcked;
    if (n > queued) {
        return std::nullopt;
    }
    return n;
}

// An 'h' attribute: a decimal unsigned 32-bit integer.
inline std::optional<uint32_t> parseH(std::string_view text) {
    if (text.empty() || text.size() > 10) {
        return std::nullopt;
    }
    uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > UINT32_MAX) {
        return std::nullopt;
    }
    return static_cast<uint32_t>(v);
}

}  // namespace xmppd::sm
