#include "modules/vcard/vcard_data.hpp"

#include <cctype>
#include <vector>

#include "xmpp/sasl/crypto.hpp"

namespace xmppd::vcard {

using xmpp::Element;

namespace {

std::string hex(std::string_view bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char b : bytes) {
        out += kDigits[b >> 4];
        out += kDigits[b & 0x0f];
    }
    return out;
}

// "n.given" → {"N", "GIVEN"}; empty on a malformed name.
std::vector<std::string> fieldPath(std::string_view field) {
    std::vector<std::string> parts;
    std::string current;
    for (char ch : field) {
        if (ch == '.') {
            parts.push_back(std::move(current));
            current.clear();
        } else if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_') {
            current += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        } else {
            return {};
        }
    }
    parts.push_back(std::move(current));
    if (parts.size() > 2) {
        return {};
    }
    for (const auto& p : parts) {
        if (p.empty() || std::isdigit(static_cast<unsigned char>(p.front())) || p.front() == '-') {
            return {};
        }
    }
    return parts;
}

}  // namespace

std::optional<std::string> photoHash(const Element& vcard) {
    const Element* photo = vcard.findChild("PHOTO", kVcard);
    const Element* binval = photo ? photo->findChild("BINVAL", kVcard) : nullptr;
    if (!binval) {
        return std::string();
    }
    std::string b64;
    for (char ch : binval->text()) {
        if (!std::isspace(static_cast<unsigned char>(ch))) {
            b64 += ch;
        }
    }
    if (b64.empty()) {
        return std::string();
    }
    // Some clients leave the padding out; the decoder insists on it.
    while (b64.size() % 4 != 0) {
        b64 += '=';
    }
    auto data = xmpp::sasl::base64Decode(b64);
    if (!data) {
        return std::nullopt;
    }
    return hex(xmpp::sasl::hash(xmpp::sasl::ScramHash::Sha1, *data));
}

std::string fieldText(const Element& vcard, std::string_view field) {
    auto path = fieldPath(field);
    const Element* e = &vcard;
    for (const auto& name : path) {
        e = e->findChild(name, kVcard);
        if (!e) {
            return {};
        }
    }
    return path.empty() ? std::string() : e->text();
}

bool setField(Element& vcard, std::string_view field, std::string_view value) {
    auto path = fieldPath(field);
    if (path.empty()) {
        return false;
    }
    Element* e = &vcard;
    for (const auto& name : path) {
        Element* child = e->findChild(name, kVcard);
        e = child ? child : &e->addChild(name, std::string(kVcard));
    }
    // The field's text replaces its text children; child elements stay.
    std::erase_if(e->children(), [](const Element& c) { return c.isText(); });
    if (!value.empty()) {
        e->addText(value);
    }
    return true;
}

void applyAvatarUpdate(Element& presence, const std::string& hash) {
    presence.removeChildren("x", kVcardUpdate);
    Element& photo =
        presence.addChild("x", std::string(kVcardUpdate)).addChild("photo", std::string(kVcardUpdate));
    if (!hash.empty()) {
        photo.addText(hash);
    }
}

}  // namespace xmppd::vcard
