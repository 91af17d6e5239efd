#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xmpp {

// A node of an XML element tree. An Element with an empty name is a text node
// (its text is in text()); this keeps mixed content in document order with a
// single child vector and no variant.
//
// Attribute names are stored as written without prefix, except attributes in
// the XML namespace ("xml:lang") and attributes in another namespace, which
// are stored as "uri|local" and given a generated prefix when serialized.
class Element {
  public:
    using Attribute = std::pair<std::string, std::string>;

    Element() = default;
    Element(std::string name, std::string ns) : name_(std::move(name)), ns_(std::move(ns)) {}
    static Element textNode(std::string text);

    const std::string& name() const { return name_; }
    const std::string& ns() const { return ns_; }
    void setName(std::string name) { name_ = std::move(name); }
    void setNs(std::string ns) { ns_ = std::move(ns); }
    bool isText() const { return name_.empty(); }
    bool is(std::string_view name, std::string_view ns) const { return name_ == name && ns_ == ns; }

    // Attributes.
    const std::vector<Attribute>& attributes() const { return attrs_; }
    const std::string* findAttr(std::string_view name) const;
    std::string_view attr(std::string_view name) const;  // "" when absent
    bool hasAttr(std::string_view name) const { return findAttr(name) != nullptr; }
    Element& setAttr(std::string_view name, std::string_view value);
    void removeAttr(std::string_view name);
    void reserveAttrs(size_t n) { attrs_.reserve(n); }

    // Children.
    const std::vector<Element>& children() const { return children_; }
    std::vector<Element>& children() { return children_; }
    Element& addChild(Element child);
    Element& addChild(std::string name, std::string ns) {
        return addChild(Element(std::move(name), std::move(ns)));
    }
    Element& addText(std::string_view text);
    const Element* findChild(std::string_view name, std::string_view ns) const;
    Element* findChild(std::string_view name, std::string_view ns);
    // First child element in namespace ns (any name), nullptr when none.
    const Element* firstChildInNs(std::string_view ns) const;
    // First child element of any name, skipping text.
    const Element* firstChildElement() const;
    size_t elementCount() const;
    void removeChildren(std::string_view name, std::string_view ns);

    // Text node's text, or the concatenated direct text children of an element.
    std::string text() const;
    const std::string& rawText() const { return text_; }
    std::string& rawText() { return text_; }

  private:
    std::string name_;
    std::string ns_;
    std::string text_;
    std::vector<Attribute> attrs_;
    std::vector<Element> children_;
};

// Stanza helpers (RFC 6120 §8.1: to, from, id, type, xml:lang).
inline bool isStanza(const Element& e) {
    return e.name() == "message" || e.name() == "presence" || e.name() == "iq";
}

}  // namespace xmpp
