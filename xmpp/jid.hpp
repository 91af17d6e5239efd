#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace xmpp {

// An XMPP address (RFC 7622). Instances are always normalised: two Jids that denote the same entity
// compare equal byte for byte, so they can be used directly as map keys.
class Jid {
  public:
    Jid() = default;

    // Parses and normalises; std::nullopt if invalid (caller answers <jid-malformed/>).
    static std::optional<Jid> parse(std::string_view text);
    // Builds from parts (each part normalised and validated the same way); nullopt if invalid.
    // An empty local or resource means "absent".
    static std::optional<Jid> fromParts(std::string_view local, std::string_view domain,
                                        std::string_view resource = {});

    const std::string& local() const { return local_; }
    const std::string& domain() const { return domain_; }
    const std::string& resource() const { return resource_; }

    bool isBare() const { return resource_.empty(); }
    bool empty() const { return domain_.empty(); }
    Jid bare() const;
    // The resource is assumed to be already prepared (server-generated); it is not validated.
    Jid withResource(std::string_view normalisedResource) const;
    std::string str() const;  // local@domain/resource, absent parts omitted
    std::string bareStr() const;

    friend bool operator==(const Jid&, const Jid&) = default;
    friend std::strong_ordering operator<=>(const Jid&, const Jid&) = default;

  private:
    std::string local_;
    std::string domain_;
    std::string resource_;
};

// Part preparation. Each returns the normalised part, or nullopt if the input is not acceptable
// (including empty input and results longer than 1023 bytes, RFC 7622 §3.2-3.4).
std::optional<std::string> prepLocalpart(std::string_view);  // also used for SASL usernames
std::optional<std::string> prepResourcepart(std::string_view);
std::optional<std::string> prepDomainpart(std::string_view);

namespace detail {
// The same preparations always through libidn/libidn2, without the ASCII fast path; for tests that
// check the two paths agree.
std::optional<std::string> prepLocalpartLibrary(std::string_view);
std::optional<std::string> prepResourcepartLibrary(std::string_view);
std::optional<std::string> prepDomainpartLibrary(std::string_view);
}  // namespace detail

}  // namespace xmpp

template <>
struct std::hash<xmpp::Jid> {
    std::size_t operator()(const xmpp::Jid& jid) const noexcept;
};
