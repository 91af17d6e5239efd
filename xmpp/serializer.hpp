#pragma once

#include <string>
#include <string_view>

#include "xmpp/element.hpp"

namespace xmpp {

// Appends the XML escaping of text to out (character data or attribute value).
void appendEscaped(std::string& out, std::string_view text);

// Appends e to out. parentNs is the default namespace in scope where e is
// written (for a stanza inside a c2s stream: "jabber:client"), so that the
// xmlns attribute is only written where the namespace changes.
void serialize(const Element& e, std::string& out, std::string_view parentNs = {});
std::string toString(const Element& e, std::string_view parentNs = {});

}  // namespace xmpp
