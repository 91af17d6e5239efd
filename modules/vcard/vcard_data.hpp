#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "xmpp/element.hpp"

namespace xmppd::vcard {

inline constexpr std::string_view kVcard = "vcard-temp";
inline constexpr std::string_view kVcardUpdate = "vcard-temp:x:update";

// XEP-0153 §4.1: the hex SHA-1 of the avatar's binary data (PHOTO/BINVAL,
// base64 with any line breaks). "" when the vCard has no BINVAL photo;
// nullopt when BINVAL is not base64.
std::optional<std::string> photoHash(const xmpp::Element& vcard);

// A field for the admin commands: a top-level element ("FN", "NICKNAME") or
// one level down ("N.GIVEN", "ORG.ORGNAME"). Names are case-insensitive and
// matched in upper case, as vcard-temp spells them.
std::string fieldText(const xmpp::Element& vcard, std::string_view field);
// Sets the first matching field's text, creating the elements as needed;
// false if the field name is not one or two valid element names.
bool setField(xmpp::Element& vcard, std::string_view field, std::string_view value);

// XEP-0153 §4.2: replaces whatever <x xmlns='vcard-temp:x:update'/> the
// client put in its presence with the server's knowledge (<photo/> empty
// when there is no avatar).
void applyAvatarUpdate(xmpp::Element& presence, const std::string& hash);

}  // namespace xmppd::vcard
