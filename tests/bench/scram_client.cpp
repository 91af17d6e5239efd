#include "tests/bench/scram_client.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <map>
#include <stdexcept>
#include <tuple>

#include "tests/bench/bench_util.hpp"

namespace bench {

namespace {

const EVP_MD* digest(ScramHash h) {
    return h == ScramHash::Sha1 ? EVP_sha1() : EVP_sha256();
}

std::string hmac(ScramHash h, std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(digest(h), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len)) {
        throw std::runtime_error("HMAC failed");
    }
    return std::string(reinterpret_cast<char*>(out), len);
}

std::string hashOf(ScramHash h, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(data.data(), data.size(), out, &len, digest(h), nullptr)) {
        throw std::runtime_error("EVP_Digest failed");
    }
    return std::string(reinterpret_cast<char*>(out), len);
}

struct Keys {
    std::string clientKey;
    std::string storedKey;
    std::string serverKey;
};

using CacheKey = std::tuple<int, std::string, std::string, unsigned>;
std::map<CacheKey, Keys>& cache() {
    static std::map<CacheKey, Keys> c;
    return c;
}

const Keys& keysFor(ScramHash h, const std::string& password, const std::string& salt, unsigned iterations) {
    CacheKey key{static_cast<int>(h), password, salt, iterations};
    auto it = cache().find(key);
    if (it != cache().end()) {
        return it->second;
    }
    unsigned char salted[EVP_MAX_MD_SIZE];
    int len = EVP_MD_get_size(digest(h));
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()),
                          static_cast<int>(iterations), digest(h), len, salted) != 1) {
        throw std::runtime_error("PBKDF2 failed");
    }
    std::string saltedPassword(reinterpret_cast<char*>(salted), static_cast<size_t>(len));
    Keys k;
    k.clientKey = hmac(h, saltedPassword, "Client Key");
    k.storedKey = hashOf(h, k.clientKey);
    k.serverKey = hmac(h, saltedPassword, "Server Key");
    return cache().emplace(std::move(key), std::move(k)).first->second;
}

// RFC 5802 §5.1: ',' and '=' in a saslname are escaped.
std::string saslName(std::string_view user) {
    std::string out;
    for (char c : user) {
        if (c == ',') {
            out += "=2C";
        } else if (c == '=') {
            out += "=3D";
        } else {
            out += c;
        }
    }
    return out;
}

// The value of "k=" in a comma-separated SCRAM message.
std::optional<std::string_view> field(std::string_view msg, char k) {
    size_t pos = 0;
    while (pos < msg.size()) {
        size_t end = msg.find(',', pos);
        if (end == std::string_view::npos) {
            end = msg.size();
        }
        std::string_view part = msg.substr(pos, end - pos);
        if (part.size() >= 2 && part[0] == k && part[1] == '=') {
            return part.substr(2);
        }
        pos = end + 1;
    }
    return std::nullopt;
}

}  // namespace

ScramClient::ScramClient(ScramHash hash, std::string_view user, std::string password)
    : hash_(hash), user_(saslName(user)), password_(std::move(password)) {}

std::string ScramClient::clientFirst() {
    nonce_ = base64Encode(randomBytes(18));
    clientFirstBare_ = "n=" + user_ + ",r=" + nonce_;
    return "n,," + clientFirstBare_;
}

std::optional<std::string> ScramClient::clientFinal(std::string_view serverFirst) {
    auto nonce = field(serverFirst, 'r');
    auto salt64 = field(serverFirst, 's');
    auto iter = field(serverFirst, 'i');
    if (!nonce || !salt64 || !iter || nonce->substr(0, nonce_.size()) != nonce_ ||
        nonce->size() <= nonce_.size()) {
        return std::nullopt;
    }
    auto salt = base64Decode(*salt64);
    unsigned long iterations = 0;
    try {
        iterations = std::stoul(std::string(*iter));
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (!salt || iterations == 0 || iterations > 10000000) {
        return std::nullopt;
    }
    const Keys& keys = keysFor(hash_, password_, *salt, static_cast<unsigned>(iterations));
    // "biws" is base64("n,,"): the GS2 header without channel binding.
    std::string withoutProof = "c=biws,r=" + std::string(*nonce);
    std::string authMessage = clientFirstBare_ + "," + std::string(serverFirst) + "," + withoutProof;
    std::string signature = hmac(hash_, keys.storedKey, authMessage);
    std::string proof = keys.clientKey;
    for (size_t i = 0; i < proof.size(); ++i) {
        proof[i] = static_cast<char>(proof[i] ^ signature[i]);
    }
    serverSignature_ = hmac(hash_, keys.serverKey, authMessage);
    return withoutProof + ",p=" + base64Encode(proof);
}

bool ScramClient::verifyServerFinal(std::string_view serverFinal) const {
    auto v = field(serverFinal, 'v');
    if (!v) {
        return false;
    }
    auto sig = base64Decode(*v);
    return sig && *sig == serverSignature_;
}

size_t ScramClient::cacheSize() {
    return cache().size();
}

}  // namespace bench
