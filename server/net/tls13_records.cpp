// The TLS 1.3 record layer (RFC 8446 §5) over OpenSSL's AEAD ciphers and
// HKDF. Only what a server needs after its handshake: application data both
// ways, alerts, and KeyUpdate (§4.6.3). Any other post-handshake message is
// unexpected, since we send no tickets and never request a certificate.
#include "server/net/tls13_records.hpp"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include <cstring>
#include <memory>

namespace xmppd {

namespace {

constexpr uint8_t kChangeCipherSpec = 20;
constexpr uint8_t kAlert = 21;
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kApplicationData = 23;
constexpr uint8_t kKeyUpdate = 24;  // HandshakeType key_update

constexpr uint8_t kUnexpectedMessage = 10;
constexpr uint8_t kBadRecordMac = 20;
constexpr uint8_t kRecordOverflow = 22;
constexpr uint8_t kDecodeError = 50;
constexpr uint8_t kIllegalParameter = 47;

constexpr size_t kTagLen = 16;
constexpr size_t kMaxPlaintext = 1 << 14;               // §5.1
constexpr size_t kMaxCiphertext = kMaxPlaintext + 256;  // §5.2
// §5.5: AES-GCM keys must change well before 2^24.5 full records; we roll
// our write key after 2^24 records, whatever the suite.
constexpr uint64_t kRekeyAfter = uint64_t(1) << 24;

const EVP_CIPHER* cipherOf(Tls13Records::Suite s) {
    switch (s) {
        case Tls13Records::Suite::Aes128Gcm:
            return EVP_aes_128_gcm();
        case Tls13Records::Suite::Aes256Gcm:
            return EVP_aes_256_gcm();
        case Tls13Records::Suite::Chacha20Poly1305:
            return EVP_chacha20_poly1305();
        case Tls13Records::Suite::None:
            break;
    }
    return nullptr;
}

const char* digestOf(Tls13Records::Suite s) {
    return s == Tls13Records::Suite::Aes256Gcm ? "SHA384" : "SHA256";
}

// One cipher context per suite and thread, re-keyed for each record: a
// connection holds no OpenSSL object between records.
EVP_CIPHER_CTX* threadCipher(Tls13Records::Suite s) {
    struct Contexts {
        EVP_CIPHER_CTX* ctx[4] = {};
        ~Contexts() {
            for (auto* c : ctx) {
                EVP_CIPHER_CTX_free(c);
            }
        }
    };
    thread_local Contexts contexts;
    auto& c = contexts.ctx[static_cast<int>(s)];
    if (!c) {
        c = EVP_CIPHER_CTX_new();
        if (!c || EVP_CipherInit_ex2(c, cipherOf(s), nullptr, nullptr, 1, nullptr) != 1) {
            EVP_CIPHER_CTX_free(c);
            c = nullptr;
        }
    }
    return c;
}

// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
bool expandLabel(Tls13Records::Suite s, const uint8_t* secret, size_t secretLen, std::string_view label,
                 uint8_t* out, size_t outLen) {
    uint8_t info[2 + 1 + 6 + 32 + 1];
    size_t n = 0;
    info[n++] = static_cast<uint8_t>(outLen >> 8);
    info[n++] = static_cast<uint8_t>(outLen);
    info[n++] = static_cast<uint8_t>(6 + label.size());
    std::memcpy(info + n, "tls13 ", 6);
    n += 6;
    std::memcpy(info + n, label.data(), label.size());
    n += label.size();
    info[n++] = 0;  // context length

    static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    if (!kdf) {
        return false;
    }
    std::unique_ptr<EVP_KDF_CTX, decltype(&EVP_KDF_CTX_free)> ctx(EVP_KDF_CTX_new(kdf), &EVP_KDF_CTX_free);
    if (!ctx) {
        return false;
    }
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>(digestOf(s)), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(secret), secretLen),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    return EVP_KDF_derive(ctx.get(), out, outLen, params) == 1;
}

bool deriveKeys(Tls13Records::Suite s, size_t secretLen, size_t keyLen, Tls13Records::Direction& d) {
    d.seq = 0;
    return expandLabel(s, d.secret.data(), secretLen, "key", d.key.data(), keyLen) &&
           expandLabel(s, d.secret.data(), secretLen, "iv", d.iv.data(), d.iv.size());
}

// §5.3: the per-record nonce is the IV xor the 64-bit sequence number.
void nonceFor(const Tls13Records::Direction& d, uint8_t nonce[12]) {
    std::memcpy(nonce, d.iv.data(), 12);
    for (int i = 0; i < 8; ++i) {
        nonce[11 - i] ^= static_cast<uint8_t>(d.seq >> (8 * i));
    }
}

}  // namespace

Tls13Records::Suite Tls13Records::suiteFromId(uint16_t id) {
    switch (id) {
        case 0x1301:
            return Suite::Aes128Gcm;
        case 0x1302:
            return Suite::Aes256Gcm;
        case 0x1303:
            return Suite::Chacha20Poly1305;
        default:
            return Suite::None;
    }
}

bool Tls13Records::start(Suite s) {
    if (s == Suite::None || !haveClientSecret || !haveServerSecret) {
        return false;
    }
    suite = s;
    secretLen = s == Suite::Aes256Gcm ? 48 : 32;
    keyLen = s == Suite::Aes128Gcm ? 16 : 32;
    return threadCipher(s) && deriveKeys(s, secretLen, keyLen, rx) && deriveKeys(s, secretLen, keyLen, tx);
}

bool Tls13Records::rekey(Direction& d) {
    // §7.2: application_traffic_secret_N+1 = HKDF-Expand-Label(secret_N, "traffic upd", "", Hash.length)
    std::array<uint8_t, 48> next{};
    if (!expandLabel(suite, d.secret.data(), secretLen, "traffic upd", next.data(), secretLen)) {
        return false;
    }
    d.secret = next;
    return deriveKeys(suite, secretLen, keyLen, d);
}

Tls13Records::Result Tls13Records::fail(uint8_t alertDescription, std::string message, std::string& out) {
    error = std::move(message);
    alert(alertDescription, out);
    failed = true;
    return Result::Failed;
}

void Tls13Records::alert(uint8_t description, std::string& out) {
    if (failed || closeSent) {
        return;
    }
    // §6: the level is ignored in TLS 1.3; close_notify goes as a warning.
    uint8_t body[2] = {static_cast<uint8_t>(description == 0 ? 1 : 2), description};
    sealRecord(kAlert, body, sizeof body, out);
    closeSent = true;
    if (description != 0) {
        failed = true;
    }
}

Tls13Records::Result Tls13Records::open(std::string_view ciphertext, std::string& out, Sink& sink) {
    if (failed) {
        return Result::Failed;
    }
    // Whole records are opened straight from the caller's buffer; only a
    // trailing partial record is copied.
    std::string joined;
    std::string_view data = ciphertext;
    if (!partial.empty()) {
        joined.swap(partial);
        joined.append(ciphertext);
        data = joined;
    }
    size_t pos = 0;
    while (data.size() - pos >= 5) {
        auto* h = reinterpret_cast<const uint8_t*>(data.data() + pos);
        size_t len = (size_t(h[3]) << 8) | h[4];
        if (len > kMaxCiphertext) {
            return fail(kRecordOverflow, "TLS record too long", out);
        }
        if (data.size() - pos < 5 + len) {
            break;
        }
        Result r = record(h, 5 + len, out, sink);
        pos += 5 + len;
        if (r != Result::Ok) {
            return r;
        }
    }
    if (pos < data.size()) {
        partial.assign(data.substr(pos));
    } else if (partial.capacity() > 0) {
        std::string().swap(partial);
    }
    return Result::Ok;
}

Tls13Records::Result Tls13Records::record(const uint8_t* rec, size_t len, std::string& out, Sink& sink) {
    // §5: after the handshake every record is protected; a change_cipher_spec
    // after the peer's Finished is unexpected.
    if (rec[0] != kApplicationData) {
        return fail(kUnexpectedMessage,
                    rec[0] == kChangeCipherSpec ? "TLS change_cipher_spec after the handshake"
                                                : "unprotected TLS record after the handshake",
                    out);
    }
    size_t cipherLen = len - 5;
    if (cipherLen < kTagLen + 1) {
        return fail(kDecodeError, "TLS record too short", out);
    }
    thread_local uint8_t plain[kMaxCiphertext];
    EVP_CIPHER_CTX* ctx = threadCipher(suite);
    uint8_t nonce[12];
    nonceFor(rx, nonce);
    size_t bodyLen = cipherLen - kTagLen;
    int n = 0;
    int fin = 0;
    bool ok = ctx && EVP_CipherInit_ex2(ctx, nullptr, rx.key.data(), nonce, 0, nullptr) == 1 &&
              EVP_CipherUpdate(ctx, nullptr, &n, rec, 5) == 1 &&
              EVP_CipherUpdate(ctx, plain, &n, rec + 5, static_cast<int>(bodyLen)) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, kTagLen,
                                  const_cast<uint8_t*>(rec + 5 + bodyLen)) == 1 &&
              EVP_CipherFinal_ex(ctx, plain + n, &fin) == 1;
    if (!ok) {
        return fail(kBadRecordMac, "TLS record failed authentication", out);
    }
    ++rx.seq;
    // §5.4: the content type is the last non-zero byte; zeros after it are padding.
    size_t size = bodyLen;
    while (size > 0 && plain[size - 1] == 0) {
        --size;
    }
    if (size == 0) {
        return fail(kUnexpectedMessage, "TLS record without a content type", out);
    }
    uint8_t type = plain[--size];
    if (size > kMaxPlaintext) {
        return fail(kRecordOverflow, "TLS plaintext too long", out);
    }
    if (handshakeHave > 0 && type != kHandshake) {
        // §5.1: handshake messages are not interleaved with other records.
        return fail(kUnexpectedMessage, "TLS handshake message interrupted", out);
    }
    switch (type) {
        case kApplicationData:
            if (size > 0 && !sink.onApplicationData(std::string_view(reinterpret_cast<char*>(plain), size))) {
                return Result::Stopped;
            }
            return Result::Ok;
        case kAlert:
            if (size != 2) {
                return fail(kDecodeError, "malformed TLS alert", out);
            }
            if (plain[1] == 0) {
                return Result::PeerClosed;
            }
            // §6.2: every other alert in TLS 1.3 is fatal; answer none.
            failed = true;
            error = "TLS alert " + std::to_string(plain[1]) + " from the peer";
            return Result::Failed;
        case kHandshake:
            return handshakeBytes(plain, size, out);
        default:
            return fail(kUnexpectedMessage, "unknown TLS content type " + std::to_string(type), out);
    }
}

Tls13Records::Result Tls13Records::handshakeBytes(const uint8_t* p, size_t n, std::string& out) {
    if (n == 0) {
        return fail(kUnexpectedMessage, "empty TLS handshake record", out);
    }
    for (size_t i = 0; i < n; ++i) {
        handshake[handshakeHave++] = p[i];
        if (handshakeHave == 4) {
            // The only message a client may send us now is KeyUpdate, one byte long.
            if (handshake[0] != kKeyUpdate || handshake[1] != 0 || handshake[2] != 0 || handshake[3] != 1) {
                return fail(kUnexpectedMessage,
                            "unexpected TLS handshake message " + std::to_string(handshake[0]), out);
            }
        }
        if (handshakeHave < handshake.size()) {
            continue;
        }
        handshakeHave = 0;
        uint8_t request = handshake[4];
        if (request > 1) {
            return fail(kIllegalParameter, "bad KeyUpdate request", out);
        }
        if (i + 1 != n) {
            // §5.1: a message that precedes a key change ends its record.
            return fail(kUnexpectedMessage, "data after KeyUpdate in the same record", out);
        }
        if (!rekey(rx)) {
            return fail(kIllegalParameter, "TLS key update failed", out);
        }
        if (request == 1) {
            // §4.6.3: answer with our own KeyUpdate (update_not_requested)
            // before any further application data, then switch keys.
            const uint8_t msg[5] = {kKeyUpdate, 0, 0, 1, 0};
            if (!sealRecord(kHandshake, msg, sizeof msg, out) || !rekey(tx)) {
                return fail(kIllegalParameter, "TLS key update failed", out);
            }
        }
    }
    return Result::Ok;
}

bool Tls13Records::seal(std::string_view plaintext, std::string& out) {
    if (failed || closeSent) {
        return false;
    }
    auto* p = reinterpret_cast<const uint8_t*>(plaintext.data());
    size_t left = plaintext.size();
    while (left > 0) {
        if (tx.seq >= kRekeyAfter) {
            const uint8_t msg[5] = {kKeyUpdate, 0, 0, 1, 0};
            if (!sealRecord(kHandshake, msg, sizeof msg, out) || !rekey(tx)) {
                failed = true;
                return false;
            }
        }
        size_t chunk = left < kMaxPlaintext ? left : kMaxPlaintext;
        if (!sealRecord(kApplicationData, p, chunk, out)) {
            failed = true;
            return false;
        }
        p += chunk;
        left -= chunk;
    }
    return true;
}

bool Tls13Records::sealRecord(uint8_t innerType, const uint8_t* p, size_t n, std::string& out) {
    EVP_CIPHER_CTX* ctx = threadCipher(suite);
    if (!ctx) {
        return false;
    }
    size_t recLen = n + 1 + kTagLen;
    size_t at = out.size();
    out.resize(at + 5 + recLen);
    auto* rec = reinterpret_cast<uint8_t*>(out.data() + at);
    // §5.2: outer type application_data, legacy version 0x0303.
    rec[0] = kApplicationData;
    rec[1] = 3;
    rec[2] = 3;
    rec[3] = static_cast<uint8_t>(recLen >> 8);
    rec[4] = static_cast<uint8_t>(recLen);
    uint8_t nonce[12];
    nonceFor(tx, nonce);
    int len = 0;
    int len2 = 0;
    int fin = 0;
    bool ok = EVP_CipherInit_ex2(ctx, nullptr, tx.key.data(), nonce, 1, nullptr) == 1 &&
              EVP_CipherUpdate(ctx, nullptr, &len, rec, 5) == 1 &&
              EVP_CipherUpdate(ctx, rec + 5, &len, p, static_cast<int>(n)) == 1 &&
              EVP_CipherUpdate(ctx, rec + 5 + len, &len2, &innerType, 1) == 1 &&
              EVP_CipherFinal_ex(ctx, rec + 5 + len + len2, &fin) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, kTagLen, rec + 5 + n + 1) == 1;
    if (!ok) {
        out.resize(at);
        return false;
    }
    ++tx.seq;
    return true;
}

void Tls13Records::trim() {
    if (partial.empty() && partial.capacity() > 0) {
        std::string().swap(partial);
    }
}

}  // namespace xmppd
