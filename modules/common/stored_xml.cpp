#include "modules/common/stored_xml.hpp"

#include "xmpp/serializer.hpp"
#include "xmpp/stream_parser.hpp"

namespace xmppd::modules {

std::string serializeStored(const xmpp::Element& element) {
    return xmpp::toString(element);
}

std::optional<xmpp::Element> parseStored(const std::string& xml) {
    struct One : xmpp::StreamParserHandler {
        std::optional<xmpp::Element> element;
        int count = 0;
        void onStreamOpen(const xmpp::StreamHeader&) override {}
        void onElement(xmpp::Element&& e) override {
            ++count;
            element = std::move(e);
        }
        void onStreamClose() override {}
    } sink;
    xmpp::ParserLimits limits;
    // What was stored came through a client stream under tighter limits;
    // these only keep the parser from refusing it.
    limits.maxStanzaBytes = xml.size() + 1024;
    limits.maxDepth = 1024;
    limits.maxAttributes = 1024;
    xmpp::StreamParser parser(sink, limits);
    std::string doc = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
    doc += xml;
    doc += "</stream:stream>";
    if (parser.feed(doc) || sink.count != 1) {
        return std::nullopt;
    }
    return std::move(sink.element);
}

}  // namespace xmppd::modules
