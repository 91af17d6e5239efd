#include "xmpp/element.hpp"

#include <algorithm>

namespace xmpp {

Element Element::textNode(std::string text) {
    Element e;
    e.text_ = std::move(text);
    return e;
}

const std::string* Element::findAttr(std::string_view name) const {
    for (const auto& [key, value] : attrs_) {
        if (key == name) {
            return &value;
        }
    }
    return nullptr;
}

std::string_view Element::attr(std::string_view name) const {
    const std::string* value = findAttr(name);
    return value ? std::string_view(*value) : std::string_view();
}

Element& Element::setAttr(std::string_view name, std::string_view value) {
    for (auto& [key, old] : attrs_) {
        if (key == name) {
            old.assign(value);
            return *this;
        }
    }
    attrs_.emplace_back(std::string(name), std::string(value));
    return *this;
}

void Element::removeAttr(std::string_view name) {
    std::erase_if(attrs_, [&](const Attribute& a) { return a.first == name; });
}

Element& Element::addChild(Element child) {
    children_.push_back(std::move(child));
    return children_.back();
}

Element& Element::addText(std::string_view text) {
    if (!children_.empty() && children_.back().isText()) {
        children_.back().text_.append(text);
        return *this;
    }
    children_.push_back(textNode(std::string(text)));
    return *this;
}

const Element* Element::findChild(std::string_view name, std::string_view ns) const {
    for (const auto& c : children_) {
        if (c.name_ == name && c.ns_ == ns) {
            return &c;
        }
    }
    return nullptr;
}

Element* Element::findChild(std::string_view name, std::string_view ns) {
    return const_cast<Element*>(std::as_const(*this).findChild(name, ns));
}

const Element* Element::firstChildInNs(std::string_view ns) const {
    for (const auto& c : children_) {
        if (!c.isText() && c.ns_ == ns) {
            return &c;
        }
    }
    return nullptr;
}

const Element* Element::firstChildElement() const {
    for (const auto& c : children_) {
        if (!c.isText()) {
            return &c;
        }
    }
    return nullptr;
}

size_t Element::elementCount() const {
    return static_cast<size_t>(
        std::count_if(children_.begin(), children_.end(), [](const Element& c) { return !c.isText(); }));
}

void Element::removeChildren(std::string_view name, std::string_view ns) {
    std::erase_if(children_, [&](const Element& c) { return c.name_ == name && c.ns_ == ns; });
}

std::string Element::text() const {
    if (isText()) {
        return text_;
    }
    std::string out;
    for (const auto& c : children_) {
        if (c.isText()) {
            out += c.text_;
        }
    }
    return out;
}

}  // namespace xmpp
