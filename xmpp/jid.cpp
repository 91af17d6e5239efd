#include "xmpp/jid.hpp"

#include <arpa/inet.h>
#include <idn2.h>
#include <stringprep.h>

#include <cstdlib>
#include <memory>

// Normalisation profiles
// ----------------------
// RFC 7622 specifies the PRECIS profiles UsernameCaseMapped (localpart) and OpaqueString
// (resourcepart). No PRECIS library is packaged in Debian 12, so, like ejabberd and Prosody, we use the
// RFC 6122 stringprep profiles Nodeprep and Resourceprep from libidn, which approximate them:
//  - both case-fold the localpart and apply compatibility normalisation (NFKC), so e.g. "henryⅣ"
//    becomes "henryiv" and "fußball" becomes "fussball" where PRECIS would reject the first and keep
//    the second unchanged;
//  - Resourceprep accepts leading/trailing ASCII spaces, which OpaqueString also allows.
// The localpart additionally excludes the characters " & ' / : < > @ (RFC 7622 §3.3.1); Nodeprep's
// prohibition table already contains them and we re-check explicitly so the rule does not depend on
// the library's table.

namespace xmpp {
namespace {

// RFC 7622 §3.2-3.4: every part is at most 1023 bytes once prepared.
constexpr std::size_t kMaxPartBytes = 1023;
// Preparation can shrink the input (characters mapped to nothing, NFKC), so a slightly longer input may
// still be acceptable; but nothing legitimate shrinks by a factor of four, and capping the input keeps
// the libraries from working on megabytes of attacker-controlled text.
constexpr std::size_t kMaxPartInputBytes = 4 * (kMaxPartBytes + 1);

struct FreeDeleter {
    void operator()(char* p) const { std::free(p); }
};
using CString = std::unique_ptr<char, FreeDeleter>;

// The C libraries take NUL-terminated strings: an embedded NUL would silently truncate the input.
bool hasNul(std::string_view s) {
    return s.find('\0') != std::string_view::npos;
}

std::optional<std::string> stringprepWith(std::string_view input, const char* profile, int flags) {
    if (input.empty() || input.size() > kMaxPartInputBytes || hasNul(input)) {
        return std::nullopt;
    }
    const std::string in(input);
    char* out = nullptr;
    // stringprep_profile() also rejects malformed UTF-8 (STRINGPREP_ICONV_ERROR).
    const int rc =
        stringprep_profile(in.c_str(), &out, profile, static_cast<Stringprep_profile_flags>(flags));
    CString owned(out);
    if (rc != STRINGPREP_OK || !owned) {
        return std::nullopt;
    }
    std::string result(owned.get());
    if (result.empty() || result.size() > kMaxPartBytes) {
        return std::nullopt;
    }
    return result;
}

bool isAsciiLdh(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

std::string asciiLower(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

// RFC 7622 §3.2: "[" IPv6address "]" (RFC 3986 IP-literal without IPvFuture).
std::optional<std::string> prepIpv6Literal(std::string_view text) {
    if (text.size() < 3 || text.back() != ']') {
        return std::nullopt;
    }
    const std::string inner(text.substr(1, text.size() - 2));
    in6_addr addr{};
    if (inet_pton(AF_INET6, inner.c_str(), &addr) != 1) {
        return std::nullopt;
    }
    return asciiLower(text);
}

bool isIpv4Literal(std::string_view text) {
    if (text.empty() || text.size() > 15) {
        return false;
    }
    for (char c : text) {
        if (!((c >= '0' && c <= '9') || c == '.')) {
            return false;
        }
    }
    const std::string s(text);
    in_addr addr{};
    return inet_pton(AF_INET, s.c_str(), &addr) == 1;
}

}  // namespace

namespace detail {

std::optional<std::string> prepLocalpartLibrary(std::string_view input) {
    // Unassigned code points are refused: the localpart identifies an account, and a code point that a
    // future Unicode version assigns could then map differently (RFC 3454 §7 "stored strings"; PRECIS
    // IdentifierClass likewise disallows unassigned code points).
    auto result = stringprepWith(input, "Nodeprep", STRINGPREP_NO_UNASSIGNED);
    if (!result) {
        return std::nullopt;
    }
    if (result->find_first_of("\"&'/:<>@") != std::string::npos) {  // RFC 7622 §3.3.1
        return std::nullopt;
    }
    return result;
}

std::optional<std::string> prepResourcepartLibrary(std::string_view input) {
    // Unassigned code points (relative to libidn's Unicode 3.2 tables) are allowed here: resources are
    // opaque, commonly carry device names with emoji, and OpaqueString (RFC 7622 §3.4) accepts them.
    return stringprepWith(input, "Resourceprep", 0);
}

std::optional<std::string> prepDomainpartLibrary(std::string_view input) {
    if (input.empty() || input.size() > kMaxPartInputBytes || hasNul(input)) {
        return std::nullopt;
    }
    if (input.front() == '[') {
        return prepIpv6Literal(input);
    }
    // RFC 7622 §3.2: a single trailing label separator is stripped. Non-ASCII separators (U+3002 etc.)
    // only become '.' during IDNA mapping, so that case is handled after conversion.
    bool strippedDot = false;
    if (input.back() == '.') {
        input.remove_suffix(1);
        strippedDot = true;
    }
    if (input.empty()) {
        return std::nullopt;
    }
    if (isIpv4Literal(input)) {
        return std::string(input);
    }

    // UTS #46 non-transitional processing maps (case folds, width-folds, NFC) and validates each label
    // as IDNA2008 requires (RFC 7622 §3.2 refers to RFC 5895 style mapping). We deliberately do NOT pass
    // IDN2_USE_STD3_ASCII_RULES: libidn2 then silently drops characters such as U+FF0F FULLWIDTH
    // SOLIDUS ("ex／ample.com" would become "example.com"). Instead the ASCII result is checked below.
    const std::string in(input);
    char* ascii = nullptr;
    int rc = idn2_to_ascii_8z(in.c_str(), &ascii, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    CString asciiOwned(ascii);
    if (rc != IDN2_OK || !asciiOwned) {
        return std::nullopt;
    }
    std::string_view asciiView(asciiOwned.get());
    if (!strippedDot && !asciiView.empty() && asciiView.back() == '.') {
        asciiView.remove_suffix(1);
    }
    // Every label must be an LDH label (RFC 5890 §2.3.1; underscores are therefore rejected) or an
    // A-label, 1..63 octets; empty labels ("a..b", ".a") are invalid.
    std::size_t labelLength = 0;
    for (char c : asciiView) {
        if (c == '.') {
            if (labelLength == 0) {
                return std::nullopt;
            }
            labelLength = 0;
            continue;
        }
        if (!isAsciiLdh(c) || ++labelLength > 63) {
            return std::nullopt;
        }
    }
    if (labelLength == 0) {
        return std::nullopt;
    }

    // Store the U-label form: RFC 7622 §3.2 compares domainparts as Unicode strings, so
    // "xn--bcher-kva.example" and "Bücher.example" must become the same Jid.
    const std::string asciiString(asciiView);
    char* unicode = nullptr;
    rc = idn2_to_unicode_8z8z(asciiString.c_str(), &unicode, 0);
    CString unicodeOwned(unicode);
    if (rc != IDN2_OK || !unicodeOwned) {
        return std::nullopt;
    }
    std::string result(unicodeOwned.get());
    if (result.empty() || result.size() > kMaxPartBytes) {
        return std::nullopt;
    }
    return result;
}

}  // namespace detail

// ASCII fast paths
// ----------------
// Nearly every JID on the wire is ASCII, and the router prepares the 'from' and 'to' of every stanza.
// For ASCII the stringprep profiles reduce to a few rules of RFC 3454 (B.1 maps no ASCII character;
// B.2 folds A-Z; NFKC leaves ASCII alone; C.1.1 prohibits U+0020 and C.2.1 the controls), and IDNA
// (UTS #46) of an LDH label is lower-casing. So an all-ASCII part skips the libraries' UCS-4 round
// trip; anything else, and every ASCII case whose answer is not obvious (controls, spaces in a
// localpart, A-labels, hyphens at a label's edges or in positions 3-4), takes the library path. The
// unit tests check that both paths agree on every printable ASCII character in every position.

namespace {

bool isPrintableAscii(char c) {
    return c >= 0x21 && c <= 0x7e;
}

char lowerAscii(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// nullopt: not decided here, use the library.
std::optional<std::optional<std::string>> fastLocalpart(std::string_view input) {
    if (input.empty() || input.size() > kMaxPartBytes) {
        return std::nullopt;
    }
    std::string out(input.size(), '\0');
    for (std::size_t i = 0; i < input.size(); ++i) {
        const char c = input[i];
        if (!isPrintableAscii(c)) {
            return std::nullopt;
        }
        if (std::string_view("\"&'/:<>@").find(c) != std::string_view::npos) {
            return std::optional<std::string>();  // Nodeprep prohibits these (RFC 6122 §A.5)
        }
        out[i] = lowerAscii(c);
    }
    return std::optional<std::string>(std::move(out));
}

std::optional<std::optional<std::string>> fastResourcepart(std::string_view input) {
    if (input.empty() || input.size() > kMaxPartBytes) {
        return std::nullopt;
    }
    for (char c : input) {
        // Resourceprep keeps case and allows the ASCII space (only C.1.2, non-ASCII spaces, is prohibited).
        if (!isPrintableAscii(c) && c != ' ') {
            return std::nullopt;
        }
    }
    return std::optional<std::string>(std::string(input));
}

std::optional<std::optional<std::string>> fastDomainpart(std::string_view input) {
    if (input.empty() || input.size() > kMaxPartBytes || input.front() == '[') {
        return std::nullopt;
    }
    if (input.back() == '.') {
        input.remove_suffix(1);
    }
    if (input.empty() || isIpv4Literal(input)) {
        return std::nullopt;
    }
    std::string out(input.size(), '\0');
    std::size_t labelStart = 0;
    for (std::size_t i = 0; i <= input.size(); ++i) {
        if (i == input.size() || input[i] == '.') {
            const std::string_view label = std::string_view(out).substr(labelStart, i - labelStart);
            // Empty or long labels are errors, but the library path says so; hyphens at the edges,
            // "??--" (RFC 5891 §4.2.3.1) and A-labels need IDNA proper.
            if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
                (label.size() >= 4 && label[2] == '-' && label[3] == '-')) {
                return std::nullopt;
            }
            if (i < input.size()) {
                out[i] = '.';
            }
            labelStart = i + 1;
            continue;
        }
        const char c = lowerAscii(input[i]);
        if (!isAsciiLdh(c)) {
            return std::nullopt;
        }
        out[i] = c;
    }
    return std::optional<std::string>(std::move(out));
}

}  // namespace

std::optional<std::string> prepLocalpart(std::string_view input) {
    if (auto fast = fastLocalpart(input)) {
        return std::move(*fast);
    }
    return detail::prepLocalpartLibrary(input);
}

std::optional<std::string> prepResourcepart(std::string_view input) {
    if (auto fast = fastResourcepart(input)) {
        return std::move(*fast);
    }
    return detail::prepResourcepartLibrary(input);
}

std::optional<std::string> prepDomainpart(std::string_view input) {
    if (auto fast = fastDomainpart(input)) {
        return std::move(*fast);
    }
    return detail::prepDomainpartLibrary(input);
}

std::optional<Jid> Jid::parse(std::string_view text) {
    // RFC 7622 §3.1: the resourcepart is everything after the first '/', even if it contains '@' or
    // further '/'; the localpart is what precedes the first '@' before that '/'.
    std::string_view resource;
    bool hasResource = false;
    if (const auto slash = text.find('/'); slash != std::string_view::npos) {
        resource = text.substr(slash + 1);
        text = text.substr(0, slash);
        hasResource = true;
    }
    std::string_view local;
    bool hasLocal = false;
    if (const auto at = text.find('@'); at != std::string_view::npos) {
        local = text.substr(0, at);
        text = text.substr(at + 1);
        hasLocal = true;
    }
    // A separator followed (or preceded) by nothing is an empty part, which is invalid, not "absent".
    if ((hasResource && resource.empty()) || (hasLocal && local.empty())) {
        return std::nullopt;
    }
    return fromParts(local, text, resource);
}

std::optional<Jid> Jid::fromParts(std::string_view local, std::string_view domain,
                                  std::string_view resource) {
    Jid jid;
    if (!local.empty()) {
        auto prepared = prepLocalpart(local);
        if (!prepared) {
            return std::nullopt;
        }
        jid.local_ = std::move(*prepared);
    }
    auto preparedDomain = prepDomainpart(domain);
    if (!preparedDomain) {
        return std::nullopt;
    }
    jid.domain_ = std::move(*preparedDomain);
    if (!resource.empty()) {
        auto prepared = prepResourcepart(resource);
        if (!prepared) {
            return std::nullopt;
        }
        jid.resource_ = std::move(*prepared);
    }
    return jid;
}

Jid Jid::bare() const {
    Jid copy;
    copy.local_ = local_;
    copy.domain_ = domain_;
    return copy;
}

Jid Jid::withResource(std::string_view normalisedResource) const {
    Jid copy = bare();
    copy.resource_ = std::string(normalisedResource);
    return copy;
}

std::string Jid::bareStr() const {
    if (local_.empty()) {
        return domain_;
    }
    std::string out;
    out.reserve(local_.size() + 1 + domain_.size());
    out.append(local_).append(1, '@').append(domain_);
    return out;
}

std::string Jid::str() const {
    std::string out = bareStr();
    if (!resource_.empty()) {
        out.append(1, '/').append(resource_);
    }
    return out;
}

}  // namespace xmpp

std::size_t std::hash<xmpp::Jid>::operator()(const xmpp::Jid& jid) const noexcept {
    const std::hash<std::string> h;
    std::size_t seed = h(jid.domain());
    // Mix in the other parts order-dependently so that swapping parts changes the hash.
    for (const std::string* part : {&jid.local(), &jid.resource()}) {
        seed ^= h(*part) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
    }
    return seed;
}
