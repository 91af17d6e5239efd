#include "xmpp/serializer.hpp"

namespace xmpp {

void appendEscaped(std::string& out, std::string_view text) {
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const char* rep = nullptr;
        switch (text[i]) {
            case '&':
                rep = "&amp;";
                break;
            case '<':
                rep = "&lt;";
                break;
            case '>':
                rep = "&gt;";
                break;
            case '"':
                rep = "&quot;";
                break;
            case '\'':
                rep = "&apos;";
                break;
            // Character references keep these through a parser: a literal one
            // in an attribute would be normalised to a space, a literal CR to
            // LF (XML 1.0 §3.3.3, §2.11).
            case '\t':
                rep = "&#9;";
                break;
            case '\n':
                rep = "&#10;";
                break;
            case '\r':
                rep = "&#13;";
                break;
            default:
                continue;
        }
        out.append(text.substr(start, i - start));
        out.append(rep);
        start = i + 1;
    }
    out.append(text.substr(start));
}

namespace {

void serializeInto(const Element& e, std::string& out, std::string_view parentNs) {
    if (e.isText()) {
        appendEscaped(out, e.rawText());
        return;
    }
    out += '<';
    out += e.name();
    if (e.ns() != parentNs) {
        out += " xmlns='";
        appendEscaped(out, e.ns());
        out += '\'';
    }
    int generated = 0;
    for (const auto& [key, value] : e.attributes()) {
        out += ' ';
        size_t bar = key.find('|');
        if (bar != std::string::npos) {
            // An attribute in a foreign namespace: declare a local prefix for it.
            std::string prefix = "ns" + std::to_string(++generated);
            out += "xmlns:" + prefix + "='";
            appendEscaped(out, std::string_view(key).substr(0, bar));
            out += "' " + prefix + ':';
            out.append(key, bar + 1);
        } else {
            out += key;
        }
        out += "='";
        appendEscaped(out, value);
        out += '\'';
    }
    if (e.children().empty()) {
        out += "/>";
        return;
    }
    out += '>';
    for (const auto& child : e.children()) {
        serializeInto(child, out, e.ns());
    }
    out += "</";
    out += e.name();
    out += '>';
}

}  // namespace

void serialize(const Element& e, std::string& out, std::string_view parentNs) {
    serializeInto(e, out, parentNs);
}

std::string toString(const Element& e, std::string_view parentNs) {
    std::string out;
    serialize(e, out, parentNs);
    return out;
}

}  // namespace xmpp
