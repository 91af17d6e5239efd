#pragma once

#include <string>
#include <string_view>

namespace xmppd {

// XEP-0114 §3: the component proves it knows the shared secret with the
// lower-case hex SHA-1 of the stream id followed by the secret.
std::string componentHandshakeDigest(std::string_view streamId, std::string_view secret);

// Compares the text of a component's <handshake/> with the expected digest
// in constant time (CRYPTO_memcmp). Hex digits are accepted in either case.
bool componentHandshakeMatches(std::string_view streamId, std::string_view secret, std::string_view received);

}  // namespace xmppd
