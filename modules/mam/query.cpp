#include "modules/mam/query.hpp"

#include <charconv>

#include "modules/mam/ids.hpp"
#include "xmpp/jid.hpp"
#include "xmpp/ns.hpp"
#include "xmpp/stream_parser.hpp"

namespace xmppd::mam {

using xmpp::Element;
using xmpp::StanzaCondition;
using xmpp::StanzaError;

namespace {

std::string ns(std::string_view n) {
    return std::string(n);
}

// Floor and ceiling of micros / 1000 for either sign.
int64_t floorMillis(int64_t us) {
    return us >= 0 ? us / 1000 : -((-us + 999) / 1000);
}
int64_t ceilMillis(int64_t us) {
    return -floorMillis(-us);
}

std::vector<std::string> fieldValues(const Element& field) {
    std::vector<std::string> out;
    for (const auto& v : field.children()) {
        if (v.is("value", kNsData) && !v.text().empty()) {
            out.push_back(v.text());
        }
    }
    return out;
}

// Each id is a lookup on the storage thread; a page never holds more.
constexpr size_t kMaxIds = 250;

StanzaError notFound() {
    return StanzaError(StanzaCondition::ItemNotFound, "no such message in the archive");
}

// Fills q from the form; an error if it has to be answered with one.
std::optional<StanzaError> applyForm(const Element& form, Query& q) {
    for (const auto& field : form.children()) {
        if (!field.is("field", kNsData)) {
            continue;
        }
        std::string_view var = field.attr("var");
        auto values = fieldValues(field);
        if (var == "FORM_TYPE") {
            if (values.size() != 1 || values[0] != kNsMam) {
                return StanzaError(StanzaCondition::BadRequest, "FORM_TYPE must be urn:xmpp:mam:2");
            }
            continue;
        }
        if (var != "ids" && values.size() > 1) {
            return StanzaError(StanzaCondition::BadRequest,
                               "field " + std::string(var) + " has several values");
        }
        if (var == "with") {
            if (values.empty()) {
                continue;
            }
            auto jid = xmpp::Jid::parse(values[0]);
            if (!jid) {
                return StanzaError(StanzaCondition::JidMalformed, "'with' is not a JID");
            }
            q.withJid = jid->bareStr();
            q.withResource = jid->resource();
        } else if (var == "start" || var == "end") {
            if (values.empty()) {
                continue;
            }
            auto us = parseStampMicros(values[0]);
            if (!us) {
                return StanzaError(StanzaCondition::BadRequest,
                                   std::string(var) + " is not a XEP-0082 DateTime: " + values[0]);
            }
            (var == "start" ? q.startMs : q.endMs) = var == "start" ? ceilMillis(*us) : floorMillis(*us);
        } else if (var == "before-id" || var == "after-id") {
            if (values.empty()) {
                continue;
            }
            auto id = parseId(values[0]);
            if (!id) {
                return notFound();
            }
            (var == "before-id" ? q.beforeId : q.afterId) = *id;
        } else if (var == "ids") {
            if (values.size() > kMaxIds) {
                return StanzaError(StanzaCondition::BadRequest,
                                   "at most " + std::to_string(kMaxIds) + " ids per query");
            }
            for (const auto& v : values) {
                auto id = parseId(v);
                if (!id) {
                    return notFound();
                }
                q.ids.push_back(*id);
            }
        } else {
            return StanzaError(StanzaCondition::FeatureNotImplemented,
                               "unsupported form field '" + std::string(var) + "'");
        }
    }
    return std::nullopt;
}

std::optional<StanzaError> applyRsm(const Element& set, Query& q, int64_t maxPageSize) {
    for (const auto& child : set.children()) {
        if (child.isText()) {
            continue;
        }
        std::string text = child.text();
        if (child.is("max", kNsRsm)) {
            int64_t max = -1;
            auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), max);
            if (ec != std::errc() || ptr != text.data() + text.size() || max < 0) {
                return StanzaError(StanzaCondition::BadRequest, "max must be a non-negative integer");
            }
            q.max = std::min(max, maxPageSize);
        } else if (child.is("after", kNsRsm) || child.is("before", kNsRsm)) {
            bool after = child.name() == "after";
            if (text.empty()) {
                if (after) {
                    return StanzaError(StanzaCondition::BadRequest, "empty <after/>");
                }
                q.lastPage = true;  // XEP-0059 §2.5: an empty <before/> asks for the last page
                continue;
            }
            auto id = parseId(text);
            if (!id) {
                return notFound();
            }
            (after ? q.rsmAfter : q.rsmBefore) = *id;
        } else {
            // <index/> (XEP-0059 §2.6) is optional and not supported.
            return StanzaError(StanzaCondition::FeatureNotImplemented,
                               "unsupported result set element <" + child.name() + "/>");
        }
    }
    return std::nullopt;
}

}  // namespace

std::variant<QueryRequest, StanzaError> parseQuery(const Element& query, int64_t maxPageSize) {
    QueryRequest r;
    r.queryId = std::string(query.attr("queryid"));
    r.query.max = maxPageSize;
    if (query.hasAttr("node")) {
        // Pubsub node archives (XEP-0442) are not user archives.
        return StanzaError(StanzaCondition::ItemNotFound, "no archive for a node here");
    }
    if (const Element* form = query.findChild("x", kNsData)) {
        if (auto e = applyForm(*form, r.query)) {
            return *e;
        }
    }
    if (const Element* set = query.findChild("set", kNsRsm)) {
        if (auto e = applyRsm(*set, r.query, maxPageSize)) {
            return *e;
        }
    }
    r.flipPage = query.findChild("flip-page", kNsMam) != nullptr;
    return r;
}

Element queryForm() {
    Element q("query", ns(kNsMam));
    Element& x = q.addChild("x", ns(kNsData));
    x.setAttr("type", "form");
    auto field = [&x](const char* var, const char* type) -> Element& {
        Element& f = x.addChild("field", ns(kNsData));
        f.setAttr("var", var).setAttr("type", type);
        return f;
    };
    field("FORM_TYPE", "hidden").addChild("value", ns(kNsData)).addText(kNsMam);
    field("with", "jid-single");
    field("start", "text-single");
    field("end", "text-single");
    field("before-id", "text-single");
    field("after-id", "text-single");
    // §4.1.5: ids is an open list (XEP-0122), never enumerated.
    field("ids", "list-multi")
        .addChild("validate", "http://jabber.org/protocol/xdata-validate")
        .setAttr("datatype", "xs:string")
        .addChild("open", "http://jabber.org/protocol/xdata-validate");
    return q;
}

Element resultMessage(const std::string& to, const std::string& from, const std::string& queryId,
                      const ArchivedMessage& item, Element original) {
    Element m("message", ns(xmpp::ns::kClient));
    m.setAttr("to", to).setAttr("from", from);
    Element& result = m.addChild("result", ns(kNsMam));
    if (!queryId.empty()) {
        result.setAttr("queryid", queryId);
    }
    result.setAttr("id", renderId(item.id));
    Element& forwarded = result.addChild("forwarded", ns(kNsForward));
    forwarded.addChild("delay", ns(kNsDelay)).setAttr("stamp", formatStamp(item.timestamp));
    forwarded.addChild(std::move(original));
    return m;
}

Element fin(const Page& page) {
    Element f("fin", ns(kNsMam));
    f.setAttr("complete", page.complete ? "true" : "false");
    Element& set = f.addChild("set", ns(kNsRsm));
    if (!page.items.empty()) {
        set.addChild("first", ns(kNsRsm)).addText(renderId(page.items.front().id));
        set.addChild("last", ns(kNsRsm)).addText(renderId(page.items.back().id));
    }
    set.addChild("count", ns(kNsRsm)).addText(std::to_string(page.count));
    return f;
}

Element metadata(const std::optional<std::pair<ArchivedMessage, ArchivedMessage>>& bounds) {
    Element m("metadata", ns(kNsMam));
    if (bounds) {
        m.addChild("start", ns(kNsMam))
            .setAttr("id", renderId(bounds->first.id))
            .setAttr("timestamp", formatStamp(bounds->first.timestamp));
        m.addChild("end", ns(kNsMam))
            .setAttr("id", renderId(bounds->second.id))
            .setAttr("timestamp", formatStamp(bounds->second.timestamp));
    }
    return m;
}

void stampStanzaId(Element& message, const std::string& by, int64_t id) {
    message.addChild("stanza-id", ns(kNsSid)).setAttr("by", by).setAttr("id", renderId(id));
}

size_t removeStanzaIds(Element& message, const std::string& by) {
    // Compared as JIDs: 'Bob@Example.com' claims to be bob@example.com too.
    return std::erase_if(message.children(), [&](const Element& c) {
        if (!c.is("stanza-id", kNsSid)) {
            return false;
        }
        auto claimed = xmpp::Jid::parse(c.attr("by"));
        return claimed && claimed->str() == by;
    });
}

std::optional<Element> parseStored(const std::string& xml) {
    struct One : xmpp::StreamParserHandler {
        std::optional<Element> element;
        void onStreamOpen(const xmpp::StreamHeader&) override {}
        void onElement(Element&& e) override { element = std::move(e); }
        void onStreamClose() override {}
    } sink;
    xmpp::ParserLimits limits;
    limits.maxStanzaBytes = xml.size() + 1024;
    xmpp::StreamParser parser(sink, limits);
    std::string doc =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" + xml;
    if (parser.feed(doc)) {
        return std::nullopt;
    }
    return std::move(sink.element);
}

}  // namespace xmppd::mam
