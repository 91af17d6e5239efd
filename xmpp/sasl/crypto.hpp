#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

// Thin wrappers over OpenSSL 3 for the SASL mechanisms. All byte strings are raw bytes held in
// std::string. Functions throw std::runtime_error only when OpenSSL itself fails (out of memory, no
// entropy), never because of peer input.
namespace xmpp::sasl {

enum class ScramHash { Sha1, Sha256 };

// Output length of the hash in bytes (20 or 32).
std::size_t digestSize(ScramHash);

std::string randomBytes(std::size_t count);

std::string base64Encode(std::string_view data);
// Strict RFC 4648 §4 decoding: standard alphabet only, no whitespace, length a multiple of 4, '='
// only as final padding, and unused bits of the last group must be zero (canonical encoding).
std::optional<std::string> base64Decode(std::string_view text);

std::string hmac(ScramHash, std::string_view key, std::string_view data);
std::string hash(ScramHash, std::string_view data);
// PBKDF2-HMAC (RFC 8018) producing digestSize() bytes, i.e. SCRAM's Hi() (RFC 5802 §2.2).
// iterations must be > 0 (std::invalid_argument otherwise).
std::string pbkdf2(ScramHash, std::string_view password, std::string_view salt, std::uint32_t iterations);

// Compares in time independent of the content (the lengths are not treated as secret).
bool constantTimeEqual(std::string_view a, std::string_view b);

}  // namespace xmpp::sasl
