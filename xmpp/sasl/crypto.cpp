#include "xmpp/sasl/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <climits>
#include <stdexcept>

namespace xmpp::sasl {
namespace {

const EVP_MD* digestFor(ScramHash h) {
    switch (h) {
        case ScramHash::Sha1:
            return EVP_sha1();
        case ScramHash::Sha256:
            return EVP_sha256();
    }
    throw std::invalid_argument("unknown ScramHash");
}

const char* digestName(ScramHash h) {
    switch (h) {
        case ScramHash::Sha1:
            return "SHA1";
        case ScramHash::Sha256:
            return "SHA256";
    }
    throw std::invalid_argument("unknown ScramHash");
}

const unsigned char* bytes(std::string_view s) {
    return reinterpret_cast<const unsigned char*>(s.data());
}

unsigned char* bytes(std::string& s) {
    return reinterpret_cast<unsigned char*>(s.data());
}

// Value of a base64 alphabet character, or -1.
int base64Value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

}  // namespace

std::size_t digestSize(ScramHash h) {
    return static_cast<std::size_t>(EVP_MD_get_size(digestFor(h)));
}

std::string randomBytes(std::size_t count) {
    std::string out(count, '\0');
    if (count > static_cast<std::size_t>(INT_MAX) ||
        (count > 0 && RAND_bytes(bytes(out), static_cast<int>(count)) != 1)) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return out;
}

std::string base64Encode(std::string_view data) {
    if (data.empty()) {
        return {};
    }
    if (data.size() > static_cast<std::size_t>(INT_MAX / 4 * 3)) {
        throw std::length_error("base64Encode: input too large");
    }
    // EVP_EncodeBlock writes 4 bytes per 3 input bytes plus a terminating NUL, no line breaks.
    std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(bytes(out), bytes(data), static_cast<int>(data.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
    if (text.size() % 4 != 0 || text.size() > static_cast<std::size_t>(INT_MAX)) {
        return std::nullopt;
    }
    if (text.empty()) {
        return std::string();
    }
    std::size_t padding = 0;
    if (text.back() == '=') {
        padding = text[text.size() - 2] == '=' ? 2 : 1;
    }
    const std::size_t dataChars = text.size() - padding;
    for (std::size_t i = 0; i < dataChars; ++i) {
        if (base64Value(text[i]) < 0) {
            return std::nullopt;  // includes a stray '=' before the padding
        }
    }
    // With padding the last data character carries bits that are not part of the output; a canonical
    // encoder leaves them zero. Accepting other values would give one byte string several encodings.
    if (padding > 0) {
        const int last = base64Value(text[dataChars - 1]);
        const int unusedMask = padding == 2 ? 0x0f : 0x03;
        if ((last & unusedMask) != 0) {
            return std::nullopt;
        }
    }
    // Input is now known to be well-formed, so EVP_DecodeBlock cannot misinterpret it. It does not
    // account for padding in its return value, hence the resize.
    std::string out(text.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(bytes(out), bytes(text), static_cast<int>(text.size()));
    if (n < 0 || static_cast<std::size_t>(n) != out.size()) {
        return std::nullopt;
    }
    out.resize(out.size() - padding);
    return out;
}

std::string hmac(ScramHash h, std::string_view key, std::string_view data) {
    std::string out(EVP_MAX_MD_SIZE, '\0');
    std::size_t outLength = 0;
    // EVP_Q_mac needs a non-null key pointer even for an empty key.
    static const unsigned char kEmpty = 0;
    const unsigned char* keyBytes = key.empty() ? &kEmpty : bytes(key);
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, digestName(h), nullptr, keyBytes, key.size(), bytes(data),
                  data.size(), bytes(out), out.size(), &outLength) == nullptr) {
        throw std::runtime_error("EVP_Q_mac failed");
    }
    out.resize(outLength);
    return out;
}

std::string hash(ScramHash h, std::string_view data) {
    std::string out(EVP_MAX_MD_SIZE, '\0');
    unsigned int outLength = 0;
    if (EVP_Digest(data.data(), data.size(), bytes(out), &outLength, digestFor(h), nullptr) != 1) {
        throw std::runtime_error("EVP_Digest failed");
    }
    out.resize(outLength);
    return out;
}

std::string pbkdf2(ScramHash h, std::string_view password, std::string_view salt, std::uint32_t iterations) {
    if (iterations == 0 || iterations > static_cast<std::uint32_t>(INT_MAX)) {
        throw std::invalid_argument("pbkdf2: bad iteration count");
    }
    if (password.size() > static_cast<std::size_t>(INT_MAX) ||
        salt.size() > static_cast<std::size_t>(INT_MAX)) {
        throw std::length_error("pbkdf2: input too large");
    }
    std::string out(digestSize(h), '\0');
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), bytes(salt),
                          static_cast<int>(salt.size()), static_cast<int>(iterations), digestFor(h),
                          static_cast<int>(out.size()), bytes(out)) != 1) {
        throw std::runtime_error("PKCS5_PBKDF2_HMAC failed");
    }
    return out;
}

bool constantTimeEqual(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace xmpp::sasl
