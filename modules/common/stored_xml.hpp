#pragma once

#include <optional>
#include <string>

#include "xmpp/element.hpp"

namespace xmppd::modules {

// Element payloads that modules keep in the database as serialized XML
// (vCards, private XML). Serialized with its own namespace declared on the
// root, so the text stands alone; parsed back with the same restricted parser
// as the client streams (RFC 6120 §11).
std::string serializeStored(const xmpp::Element& element);
// nullopt when the text is not exactly one well-formed element.
std::optional<xmpp::Element> parseStored(const std::string& xml);

}  // namespace xmppd::modules
