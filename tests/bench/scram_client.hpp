// SCRAM client side (RFC 5802, RFC 7677) without channel binding ("n,,").
// The keys derived from (hash, password, salt, iterations) are cached for the
// whole process, so thousands of logins with shared credentials run PBKDF2 once.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bench {

enum class ScramHash { Sha1, Sha256 };

class ScramClient {
  public:
    ScramClient(ScramHash hash, std::string_view user, std::string password);

    // The initial response: GS2 header and client-first-message-bare.
    std::string clientFirst();
    // The client-final-message for the server-first-message; nullopt when the
    // server's message is malformed or its nonce does not extend ours.
    std::optional<std::string> clientFinal(std::string_view serverFirst);
    // Checks "v=" (or reports "e=") of the server-final-message.
    bool verifyServerFinal(std::string_view serverFinal) const;

    static size_t cacheSize();

  private:
    ScramHash hash_;
    std::string user_;
    std::string password_;
    std::string nonce_;
    std::string clientFirstBare_;
    std::string serverSignature_;
};

}  // namespace bench
