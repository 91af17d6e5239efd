#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "xmpp/sasl/crypto.hpp"

namespace xmpp::sasl {

// A further key of the same account, derived with the same salt and
// iteration count (one per device): the proof is checked against each.
struct ScramAlternateKey {
    std::string id;
    std::string storedKey;
    std::string serverKey;
};

// What the server stores per user and hash (RFC 5802 §3). All fields are raw bytes.
struct ScramCredentials {
    std::string salt;
    std::uint32_t iterations = 0;
    std::string storedKey;
    std::string serverKey;
    std::vector<ScramAlternateKey> alternates;
};

// Iteration count used for new credentials and for the simulated credentials of unknown users.
// RFC 7677 §4 asks for at least 4096.
inline constexpr std::uint32_t kDefaultScramIterations = 4096;
// Salt length used for new credentials and for the simulated salts of unknown users.
inline constexpr std::size_t kDefaultScramSaltBytes = 16;

// password must already be SASLprep'd (see saslPrep()).
ScramCredentials deriveScramCredentials(ScramHash, std::string_view password, std::string_view salt,
                                        std::uint32_t iterations);

// SASLprep (RFC 4013) via libidn's stringprep profile. nullopt if the string is empty, longer than
// 4096 bytes, contains prohibited characters, is not valid UTF-8, or prepares to the empty string.
std::optional<std::string> saslPrep(std::string_view);

// Strict UTF-8 check (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). NUL is valid.
bool isValidUtf8(std::string_view);

// RFC 6120 §6.5 failure conditions.
enum class SaslFailure {
    Aborted,
    IncorrectEncoding,
    InvalidAuthzid,
    InvalidMechanism,
    MalformedRequest,
    MechanismTooWeak,
    NotAuthorized,
    TemporaryAuthFailure,
    AccountDisabled,
    CredentialsExpired,
    EncryptionRequired
};

// Server side of one SCRAM exchange (RFC 5802, RFC 7677), including the -PLUS variants.
// Usage: clientFirst() -> look up the returned username -> serverFirst() -> clientFinal().
// Once any step fails the object is finished and later steps return MalformedRequest.
class ScramServer {
  public:
    // cbType: empty for non-PLUS; "tls-exporter" or "tls-server-end-point" for PLUS.
    // cbData: the channel binding data of this TLS connection (may be empty when no TLS).
    // serverSupportsPlus: whether -PLUS variants were offered (for the 'y' flag downgrade check,
    // RFC 5802 §6).
    ScramServer(ScramHash, std::string cbType, std::string cbData, bool serverSupportsPlus);

    // Step 1: parse client-first-message. On success returns the SASLprep'd username (authcid, with
    // =2C and =3D decoded); authzid available via authzid().
    std::variant<std::string, SaslFailure> clientFirst(std::string_view message);

    // Step 2: produce server-first-message given the user's stored credentials, or std::nullopt for an
    // unknown user: the exchange then continues with a salt derived deterministically from the username
    // (so unknown users are indistinguishable) and clientFinal() fails with NotAuthorized.
    // Credentials with an unusable shape (wrong key length, no salt, zero iterations) are treated the
    // same way but fail with TemporaryAuthFailure. Throws std::logic_error unless called exactly once
    // after a successful clientFirst().
    std::string serverFirst(const std::optional<ScramCredentials>&);

    // Step 3: verify client-final-message (channel binding c=, nonce, proof). On success returns
    // server-final-message ("v=..."), else a failure.
    std::variant<std::string, SaslFailure> clientFinal(std::string_view message);

    // Decoded authzid from the GS2 header; empty if none was given.
    const std::string& authzid() const { return authzid_; }
    // After a successful clientFinal(): the id of the alternate key that
    // matched, empty for the account's own credentials.
    const std::string& matchedKey() const { return matchedKey_; }

    // Tests only: makes RFC test vectors reproducible. Must be called before serverFirst().
    void setServerNonceForTest(std::string nonce) { serverNonce_ = std::move(nonce); }

    // Key for deriving the simulated salts of unknown users. It should be persistent (e.g. from the
    // server's configuration or database) and set once at start-up before any exchange: with the
    // default per-process random key, the salt reported for an unknown user changes across restarts
    // while a real user's does not. Thread-safe.
    static void setUnknownUserSaltKey(std::string key);

  private:
    enum class State { Initial, ClientFirstReceived, ServerFirstSent, Finished };

    ScramHash hash_;
    std::string cbType_;
    std::string cbData_;
    bool serverSupportsPlus_;
    State state_ = State::Initial;

    std::string gs2Header_;           // exactly as received, including the trailing ','
    bool clientUsesBinding_ = false;  // gs2 flag was "p=..."
    std::string clientFirstBare_;
    std::string clientNonce_;
    std::string serverNonce_;
    std::string serverFirst_;
    std::string username_;
    std::string authzid_;
    ScramCredentials credentials_;
    std::string matchedKey_;
    std::optional<SaslFailure> deferredFailure_;  // set for unknown users / unusable credentials
};

}  // namespace xmpp::sasl
