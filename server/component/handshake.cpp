#include "server/component/handshake.hpp"

#include "xmpp/sasl/crypto.hpp"

namespace xmppd {

std::string componentHandshakeDigest(std::string_view streamId, std::string_view secret) {
    std::string input(streamId);
    input.append(secret);
    std::string digest = xmpp::sasl::hash(xmpp::sasl::ScramHash::Sha1, input);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(digest.size() * 2);
    for (unsigned char c : digest) {
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
    return out;
}

bool componentHandshakeMatches(std::string_view streamId, std::string_view secret,
                               std::string_view received) {
    std::string normalized(received);
    for (char& c : normalized) {
        if (c >= 'A' && c <= 'F') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return xmpp::sasl::constantTimeEqual(normalized, componentHandshakeDigest(streamId, secret));
}

}  // namespace xmppd
