#pragma once

// The XEP-0313 query protocol without I/O: parsing a <query/> (its XEP-0004
// form and XEP-0059 set) into a store::Query, and building the result
// messages, <fin/>, the form and <metadata/>.

#include <optional>
#include <string>
#include <variant>

#include "modules/mam/store.hpp"
#include "xmpp/element.hpp"
#include "xmpp/errors.hpp"

namespace xmppd::mam {

inline constexpr std::string_view kNsMam = "urn:xmpp:mam:2";
inline constexpr std::string_view kNsMamExtended = "urn:xmpp:mam:2#extended";
inline constexpr std::string_view kNsSid = "urn:xmpp:sid:0";
inline constexpr std::string_view kNsRsm = "http://jabber.org/protocol/rsm";
inline constexpr std::string_view kNsData = "jabber:x:data";
inline constexpr std::string_view kNsForward = "urn:xmpp:forward:0";
inline constexpr std::string_view kNsDelay = "urn:xmpp:delay";

struct QueryRequest {
    std::string queryId;  // '' when the client gave none
    Query query;          // host and user left empty for the caller
    bool flipPage = false;
};

// Errors: <feature-not-implemented/> for a form field or RSM element we do
// not support (XEP-0313 §4.1.5, XEP-0059 §2.5), <bad-request/> for a wrong
// FORM_TYPE, a malformed date or max, <jid-malformed/> for 'with',
// <item-not-found/> for an id that cannot be one of ours (§4.1.3). max is
// clamped to maxPageSize; absent, it is maxPageSize.
std::variant<QueryRequest, xmpp::StanzaError> parseQuery(const xmpp::Element& query, int64_t maxPageSize);

// The answer to an iq get <query/>: the fields we support (§4.1.5).
xmpp::Element queryForm();

// One result (§4.2): <message to from><result queryid id><forwarded>
// <delay stamp/>original</forwarded></result></message>.
xmpp::Element resultMessage(const std::string& to, const std::string& from, const std::string& queryId,
                            const ArchivedMessage& item, xmpp::Element original);

// <fin complete><set><first/><last/><count/></set></fin> (§4.3).
xmpp::Element fin(const Page& page);

// <metadata><start id timestamp/><end id timestamp/></metadata> (§5).
xmpp::Element metadata(const std::optional<std::pair<ArchivedMessage, ArchivedMessage>>& bounds);

// The <stanza-id/> the archive stamps on a message it stored (XEP-0359).
void stampStanzaId(xmpp::Element& message, const std::string& by, int64_t id);
// Removes <stanza-id/> elements claiming to be by `by`: only we may say
// what our archive ids are (XEP-0359 §5). Returns how many were removed.
size_t removeStanzaIds(xmpp::Element& message, const std::string& by);

// Parses a stored message back into an element; nullopt if it does not.
std::optional<xmpp::Element> parseStored(const std::string& xml);

}  // namespace xmppd::mam
