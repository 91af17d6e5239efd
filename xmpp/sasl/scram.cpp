#include "xmpp/sasl/scram.hpp"

#include <stringprep.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace xmpp::sasl {
namespace {

// Bounds peer-controlled work; real client messages are a few hundred bytes.
constexpr std::size_t kMaxMessageBytes = 8192;
constexpr std::size_t kMaxSaslPrepInputBytes = 4096;
constexpr std::size_t kServerNonceBytes = 24;

struct Attribute {
    char name;
    std::string_view value;
};

// Splits "a=v,b=w" into attributes. RFC 5802 §7: attr-val = ALPHA "=" value, value = 1*value-char,
// and value-char excludes ',' and NUL, so splitting on ',' is exact.
std::optional<std::vector<Attribute>> splitAttributes(std::string_view text) {
    std::vector<Attribute> out;
    while (true) {
        const auto comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        if (item.size() < 3 || item[1] != '=') {
            return std::nullopt;
        }
        const char name = item[0];
        if (!((name >= 'a' && name <= 'z') || (name >= 'A' && name <= 'Z'))) {
            return std::nullopt;
        }
        const std::string_view value = item.substr(2);
        if (value.find('\0') != std::string_view::npos) {
            return std::nullopt;
        }
        out.push_back({name, value});
        if (comma == std::string_view::npos) {
            return out;
        }
        text.remove_prefix(comma + 1);
    }
}

// saslname (RFC 5802 §7): ',' and '=' appear only as "=2C" and "=3D"; any other '=' is an error
// (the server answers e=invalid-encoding in RFC terms).
std::optional<std::string> decodeSaslname(std::string_view value) {
    if (value.empty()) {
        return std::nullopt;
    }
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
        const char c = value[i];
        if (c == '\0' || c == ',') {
            return std::nullopt;
        }
        if (c != '=') {
            out.push_back(c);
            continue;
        }
        const std::string_view escape = value.substr(i + 1, 2);
        if (escape == "2C") {
            out.push_back(',');
        } else if (escape == "3D") {
            out.push_back('=');
        } else {
            return std::nullopt;
        }
        i += 2;
    }
    return out;
}

// RFC 5802 §7: printable = %x21-2B / %x2D-7E (visible ASCII except ',').
bool isValidNonce(std::string_view nonce) {
    if (nonce.empty()) {
        return false;
    }
    for (char c : nonce) {
        if (c < 0x21 || c > 0x7e || c == ',') {
            return false;
        }
    }
    return true;
}

// RFC 5056 §7: cb-name = 1*(ALPHA / DIGIT / "." / "-").
bool isValidCbName(std::string_view name) {
    if (name.empty()) {
        return false;
    }
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '.' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::mutex& saltKeyMutex() {
    static std::mutex m;
    return m;
}

std::string& saltKeyStorage() {
    static std::string key = randomBytes(32);
    return key;
}

std::string unknownUserSaltKey() {
    std::lock_guard lock(saltKeyMutex());
    return saltKeyStorage();
}

bool credentialsUsable(ScramHash h, const ScramCredentials& c) {
    return !c.salt.empty() && c.iterations > 0 && c.storedKey.size() == digestSize(h) &&
           c.serverKey.size() == digestSize(h);
}

}  // namespace

ScramCredentials deriveScramCredentials(ScramHash h, std::string_view password, std::string_view salt,
                                        std::uint32_t iterations) {
    // RFC 5802 §3.
    const std::string saltedPassword = pbkdf2(h, password, salt, iterations);
    const std::string clientKey = hmac(h, saltedPassword, "Client Key");
    ScramCredentials out;
    out.salt = std::string(salt);
    out.iterations = iterations;
    out.storedKey = hash(h, clientKey);
    out.serverKey = hmac(h, saltedPassword, "Server Key");
    return out;
}

bool isValidUtf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto b0 = static_cast<unsigned char>(s[i]);
        if (b0 < 0x80) {
            ++i;
            continue;
        }
        std::size_t length = 0;
        std::uint32_t cp = 0;
        std::uint32_t min = 0;
        if ((b0 & 0xe0) == 0xc0) {
            length = 2;
            cp = b0 & 0x1f;
            min = 0x80;
        } else if ((b0 & 0xf0) == 0xe0) {
            length = 3;
            cp = b0 & 0x0f;
            min = 0x800;
        } else if ((b0 & 0xf8) == 0xf0) {
            length = 4;
            cp = b0 & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (s.size() - i < length) {
            return false;
        }
        for (std::size_t k = 1; k < length; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (b & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += length;
    }
    return true;
}

std::optional<std::string> saslPrep(std::string_view input) {
    if (input.empty() || input.size() > kMaxSaslPrepInputBytes ||
        input.find('\0') != std::string_view::npos) {
        return std::nullopt;
    }
    // Unassigned code points are allowed ("query" semantics, RFC 3454 §7). RFC 5802 §2.2 would treat
    // passwords as stored strings, but libidn's tables are frozen at Unicode 3.2, so that would refuse
    // every character added since (emoji, many scripts), and because the tables never change an
    // unassigned code point is always passed through identically: hashes stay reproducible.
    const std::string in(input);
    char* out = nullptr;
    const int rc = stringprep_profile(in.c_str(), &out, "SASLprep", static_cast<Stringprep_profile_flags>(0));
    std::unique_ptr<char, decltype(&std::free)> owned(out, &std::free);
    if (rc != STRINGPREP_OK || !owned) {
        return std::nullopt;
    }
    std::string result(owned.get());
    if (result.empty()) {
        return std::nullopt;
    }
    return result;
}

ScramServer::ScramServer(ScramHash h, std::string cbType, std::string cbData, bool serverSupportsPlus)
    : hash_(h),
      cbType_(std::move(cbType)),
      cbData_(std::move(cbData)),
      serverSupportsPlus_(serverSupportsPlus) {}

void ScramServer::setUnknownUserSaltKey(std::string key) {
    std::lock_guard lock(saltKeyMutex());
    saltKeyStorage() = std::move(key);
}

std::variant<std::string, SaslFailure> ScramServer::clientFirst(std::string_view message) {
    if (state_ != State::Initial) {
        state_ = State::Finished;
        return SaslFailure::MalformedRequest;
    }
    state_ = State::Finished;  // until proven otherwise
    if (message.size() > kMaxMessageBytes || !isValidUtf8(message)) {
        return SaslFailure::MalformedRequest;
    }

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","   (RFC 5802 §7, RFC 5801 §4)
    const bool isPlus = !cbType_.empty();
    std::size_t pos = 0;
    if (message.starts_with("n,") || message.starts_with("y,")) {
        const bool flagY = message[0] == 'y';
        // RFC 5802 §6: choosing a -PLUS mechanism and then declaring "no channel binding" is
        // contradictory; treat it as a malformed exchange.
        if (isPlus) {
            return SaslFailure::MalformedRequest;
        }
        // RFC 5802 §6: "y" means the client supports channel binding but believes the server does
        // not. If we did offer -PLUS, someone removed it from the advertisement: a downgrade attack.
        if (flagY && serverSupportsPlus_) {
            return SaslFailure::NotAuthorized;
        }
        pos = 2;
    } else if (message.starts_with("p=")) {
        const auto comma = message.find(',', 2);
        if (comma == std::string_view::npos) {
            return SaslFailure::MalformedRequest;
        }
        const std::string_view cbName = message.substr(2, comma - 2);
        if (!isValidCbName(cbName)) {
            return SaslFailure::MalformedRequest;
        }
        // Requesting binding over a non-PLUS mechanism, or a binding type other than the one this
        // mechanism instance was set up for, is a protocol violation by the client (we only
        // negotiate the types we advertised), hence MalformedRequest rather than NotAuthorized.
        if (!isPlus || cbName != cbType_) {
            return SaslFailure::MalformedRequest;
        }
        // We cannot verify a binding without the connection's data: fail closed.
        if (cbData_.empty()) {
            return SaslFailure::NotAuthorized;
        }
        clientUsesBinding_ = true;
        pos = comma + 1;
    } else {
        return SaslFailure::MalformedRequest;
    }

    if (pos < message.size() && message[pos] == 'a') {
        if (message.substr(pos, 2) != "a=") {
            return SaslFailure::MalformedRequest;
        }
        const auto comma = message.find(',', pos);
        if (comma == std::string_view::npos) {
            return SaslFailure::MalformedRequest;
        }
        auto authzid = decodeSaslname(message.substr(pos + 2, comma - pos - 2));
        if (!authzid) {
            return SaslFailure::MalformedRequest;
        }
        authzid_ = std::move(*authzid);
        pos = comma;
    }
    if (pos >= message.size() || message[pos] != ',') {
        return SaslFailure::MalformedRequest;
    }
    ++pos;
    gs2Header_ = std::string(message.substr(0, pos));

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    const std::string_view bare = message.substr(pos);
    const auto attributes = splitAttributes(bare);
    if (!attributes || attributes->size() < 2) {
        return SaslFailure::MalformedRequest;
    }
    // RFC 5802 §5.1: "m" announces a mandatory extension; we implement none, so authentication must
    // fail. Other unknown extensions after the nonce are ignored as the grammar requires.
    for (const auto& attribute : *attributes) {
        if (attribute.name == 'm') {
            return SaslFailure::MalformedRequest;
        }
    }
    if ((*attributes)[0].name != 'n' || (*attributes)[1].name != 'r') {
        return SaslFailure::MalformedRequest;
    }
    const auto decodedUser = decodeSaslname((*attributes)[0].value);
    if (!decodedUser) {
        return SaslFailure::MalformedRequest;
    }
    auto username = saslPrep(*decodedUser);
    if (!username) {
        return SaslFailure::MalformedRequest;
    }
    if (!isValidNonce((*attributes)[1].value)) {
        return SaslFailure::MalformedRequest;
    }

    clientNonce_ = std::string((*attributes)[1].value);
    clientFirstBare_ = std::string(bare);
    username_ = *username;
    state_ = State::ClientFirstReceived;
    return std::move(*username);
}

std::string ScramServer::serverFirst(const std::optional<ScramCredentials>& credentials) {
    if (state_ != State::ClientFirstReceived) {
        throw std::logic_error("ScramServer::serverFirst called out of order");
    }
    if (credentials && credentialsUsable(hash_, *credentials)) {
        credentials_ = *credentials;
    } else {
        // Simulate a user: the salt is stable per username so that repeated probes see the same
        // value, as they would for a real account, and the keys are random so nothing can verify.
        deferredFailure_ = credentials ? SaslFailure::TemporaryAuthFailure : SaslFailure::NotAuthorized;
        std::string input = "xmppd SCRAM unknown-user salt";
        input.push_back('\0');
        input.push_back(hash_ == ScramHash::Sha1 ? '1' : '2');
        input.push_back('\0');
        input.append(username_);
        credentials_.salt = hmac(hash_, unknownUserSaltKey(), input).substr(0, kDefaultScramSaltBytes);
        credentials_.iterations = kDefaultScramIterations;
        credentials_.storedKey = randomBytes(digestSize(hash_));
        credentials_.serverKey = randomBytes(digestSize(hash_));
    }
    if (serverNonce_.empty()) {
        serverNonce_ = base64Encode(randomBytes(kServerNonceBytes));
    }
    serverFirst_ = "r=" + clientNonce_ + serverNonce_ + ",s=" + base64Encode(credentials_.salt) +
                   ",i=" + std::to_string(credentials_.iterations);
    state_ = State::ServerFirstSent;
    return serverFirst_;
}

std::variant<std::string, SaslFailure> ScramServer::clientFinal(std::string_view message) {
    if (state_ != State::ServerFirstSent) {
        state_ = State::Finished;
        return SaslFailure::MalformedRequest;
    }
    state_ = State::Finished;
    if (message.size() > kMaxMessageBytes || !isValidUtf8(message)) {
        return SaslFailure::MalformedRequest;
    }

    // client-final-message = channel-binding "," nonce ["," extensions] "," proof
    const auto attributes = splitAttributes(message);
    if (!attributes || attributes->size() < 3) {
        return SaslFailure::MalformedRequest;
    }
    const Attribute& binding = attributes->front();
    const Attribute& nonce = (*attributes)[1];
    const Attribute& proof = attributes->back();
    if (binding.name != 'c' || nonce.name != 'r' || proof.name != 'p') {
        return SaslFailure::MalformedRequest;
    }
    for (std::size_t i = 2; i + 1 < attributes->size(); ++i) {
        const char name = (*attributes)[i].name;
        // A repeated core attribute would make the message ambiguous; 'm' as in clientFirst().
        if (name == 'c' || name == 'r' || name == 'p' || name == 'm') {
            return SaslFailure::MalformedRequest;
        }
    }

    // RFC 5802 §7: c= carries base64(gs2-header [cbind-data]); comparing it with what we saw in
    // client-first (and with our own TLS data) is what detects tampering with the gs2 flags and, for
    // -PLUS, a man in the middle terminating TLS (RFC 5802 §6).
    const auto bindingBytes = base64Decode(binding.value);
    if (!bindingBytes) {
        return SaslFailure::MalformedRequest;
    }
    std::string expectedBinding = gs2Header_;
    if (clientUsesBinding_) {
        expectedBinding += cbData_;
    }
    if (!constantTimeEqual(*bindingBytes, expectedBinding)) {
        return SaslFailure::NotAuthorized;
    }

    if (nonce.value != clientNonce_ + serverNonce_) {
        return SaslFailure::NotAuthorized;
    }

    const auto proofBytes = base64Decode(proof.value);
    if (!proofBytes || proofBytes->size() != digestSize(hash_)) {
        return SaslFailure::MalformedRequest;
    }

    // RFC 5802 §3: AuthMessage = client-first-message-bare "," server-first-message ","
    // client-final-message-without-proof; ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage),
    // and the client knows the password iff H(ClientKey) == StoredKey.
    const std::size_t withoutProofLength = message.size() - proof.value.size() - 3;  // ",p="
    const std::string authMessage =
        clientFirstBare_ + "," + serverFirst_ + "," + std::string(message.substr(0, withoutProofLength));
    auto proves = [&](const std::string& storedKey) {
        if (storedKey.size() != digestSize(hash_)) {
            return false;
        }
        const std::string clientSignature = hmac(hash_, storedKey, authMessage);
        std::string clientKey = *proofBytes;
        for (std::size_t i = 0; i < clientKey.size(); ++i) {
            clientKey[i] = static_cast<char>(clientKey[i] ^ clientSignature[i]);
        }
        return constantTimeEqual(hash(hash_, clientKey), storedKey);
    };
    const std::string* serverKey = nullptr;
    if (proves(credentials_.storedKey)) {
        serverKey = &credentials_.serverKey;
    }
    for (const auto& alternate : credentials_.alternates) {
        if (!serverKey && proves(alternate.storedKey) && alternate.serverKey.size() == digestSize(hash_)) {
            serverKey = &alternate.serverKey;
            matchedKey_ = alternate.id;
        }
    }
    // Checked only after the same work as for a real user, so timing does not reveal existence.
    if (deferredFailure_) {
        return *deferredFailure_;
    }
    if (!serverKey) {
        return SaslFailure::NotAuthorized;
    }
    return "v=" + base64Encode(hmac(hash_, *serverKey, authMessage));
}

}  // namespace xmpp::sasl
