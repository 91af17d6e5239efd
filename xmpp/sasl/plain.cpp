#include "xmpp/sasl/plain.hpp"

#include "xmpp/sasl/scram.hpp"

namespace xmpp::sasl {
namespace {

// RFC 4616 §2 requires accepting at least 255 octets per field; allow generous headroom.
constexpr std::size_t kMaxFieldBytes = 1023;

}  // namespace

std::optional<PlainCredentials> parsePlain(std::string_view message) {
    // message = [authzid] UTF8NUL authcid UTF8NUL passwd; none of the fields may contain NUL, so there
    // are exactly two separators.
    const auto first = message.find('\0');
    if (first == std::string_view::npos) {
        return std::nullopt;
    }
    const auto second = message.find('\0', first + 1);
    if (second == std::string_view::npos || message.find('\0', second + 1) != std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view authzid = message.substr(0, first);
    const std::string_view authcid = message.substr(first + 1, second - first - 1);
    const std::string_view password = message.substr(second + 1);
    if (authzid.size() > kMaxFieldBytes || authcid.size() > kMaxFieldBytes ||
        password.size() > kMaxFieldBytes) {
        return std::nullopt;
    }
    // The authzid is not SASLprep'd (RFC 4616 §2 leaves its form to the application: for XMPP it is a
    // JID, prepared by Jid::parse), but it must still be UTF-8.
    if (!isValidUtf8(authzid)) {
        return std::nullopt;
    }
    // RFC 4616 §2: authcid and passwd are prepared with SASLprep; empty values (also after
    // preparation, e.g. only soft hyphens) are refused. saslPrep() rejects empty input itself.
    auto preparedAuthcid = saslPrep(authcid);
    auto preparedPassword = saslPrep(password);
    if (!preparedAuthcid || !preparedPassword) {
        return std::nullopt;
    }
    PlainCredentials out;
    out.authzid = std::string(authzid);
    out.authcid = std::move(*preparedAuthcid);
    out.password = std::move(*preparedPassword);
    return out;
}

}  // namespace xmpp::sasl
