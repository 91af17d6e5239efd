#pragma once

#include <string_view>

// XML namespaces used by the protocol library and the server.
namespace xmpp::ns {
inline constexpr std::string_view kStream = "http://etherx.jabber.org/streams";
inline constexpr std::string_view kClient = "jabber:client";
inline constexpr std::string_view kComponentAccept = "jabber:component:accept";
inline constexpr std::string_view kServer = "jabber:server";
inline constexpr std::string_view kStreams = "urn:ietf:params:xml:ns:xmpp-streams";
inline constexpr std::string_view kStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
inline constexpr std::string_view kTls = "urn:ietf:params:xml:ns:xmpp-tls";
inline constexpr std::string_view kSasl = "urn:ietf:params:xml:ns:xmpp-sasl";
inline constexpr std::string_view kBind = "urn:ietf:params:xml:ns:xmpp-bind";
inline constexpr std::string_view kSession = "urn:ietf:params:xml:ns:xmpp-session";
inline constexpr std::string_view kSaslChannelBinding = "urn:xmpp:sasl-cb:0";
inline constexpr std::string_view kXml = "http://www.w3.org/XML/1998/namespace";
inline constexpr std::string_view kDiscoInfo = "http://jabber.org/protocol/disco#info";
inline constexpr std::string_view kDiscoItems = "http://jabber.org/protocol/disco#items";
inline constexpr std::string_view kPing = "urn:xmpp:ping";
inline constexpr std::string_view kVersion = "jabber:iq:version";
}  // namespace xmpp::ns
