#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace xmpp::sasl {

struct PlainCredentials {
    std::string authzid;   // as sent (not prepared); empty if absent
    std::string authcid;   // SASLprep'd
    std::string password;  // SASLprep'd
};

// Parses the PLAIN message (RFC 4616 §2): [authzid] NUL authcid NUL passwd. nullopt if the structure
// is wrong, authcid or password is empty, or a field fails SASLprep / is not valid UTF-8.
std::optional<PlainCredentials> parsePlain(std::string_view message);

}  // namespace xmpp::sasl
