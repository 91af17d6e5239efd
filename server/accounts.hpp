#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "xmpp/sasl/crypto.hpp"
#include "xmpp/sasl/scram.hpp"

namespace storage {
class Pool;
class Connection;
}  // namespace storage

namespace xmppd {

class Worker;
struct Hooks;

// Accounts on top of the storage pool, asynchronously: every call runs on a
// storage thread and its callback is posted to the given worker (or, with a
// null worker, called on the storage thread — for admin commands whose reply
// is itself thread-safe). Credentials are SCRAM StoredKey/ServerKey with a
// salt and an iteration count (RFC 5802 §3), never the password.
class Accounts {
  public:
    enum class Status {
        Ok,
        Exists,       // create: the account already exists
        NotFound,     // no such account
        BadPassword,  // checkPassword: wrong password
        Invalid,      // a malformed username, host or password
        Unavailable,  // storage down or overloaded: try again later
    };

    Accounts(storage::Pool& pool, Hooks& hooks, std::vector<std::string> hosts, int iterations);

    void create(std::string username, std::string host, std::string password, Worker* replyTo,
                std::function<void(Status)> done);
    void changePassword(std::string username, std::string host, std::string password, Worker* replyTo,
                        std::function<void(Status)> done);
    void remove(std::string username, std::string host, Worker* replyTo, std::function<void(Status)> done);
    void exists(std::string username, std::string host, Worker* replyTo, std::function<void(Status)> done);
    void list(std::string host, Worker* replyTo, std::function<void(Status, std::vector<std::string>)> done);
    // For SCRAM: the stored credentials for one hash (nullopt when unknown),
    // with the account's further keys (one per device) as alternates.
    void scramCredentials(std::string username, std::string host, xmpp::sasl::ScramHash hash, Worker* replyTo,
                          std::function<void(Status, std::optional<xmpp::sasl::ScramCredentials>)> done);
    // For PLAIN: derives and compares in constant time on the storage thread;
    // reports which key matched (empty: the account's own password).
    void checkPassword(std::string username, std::string host, std::string password, Worker* replyTo,
                       std::function<void(Status, std::string keyId)> done);
    // Records that a key was used to log in (for list_devices); fire and forget.
    void keyUsed(std::string username, std::string host, std::string keyId);

    // Inside a caller's storage job (its transaction). Username prepared,
    // host one of ours. Creates the account unless it exists; true when it
    // did (accountCreated has run).
    bool createIn(storage::Connection& c, const std::string& host, const std::string& username,
                  std::string_view password);
    // Replaces the account's own password (keeping salt and iterations
    // while it has keys); false if there is no such account. `password` is
    // already SASLprep'd.
    bool changePasswordIn(storage::Connection& c, const std::string& host, const std::string& username,
                          const std::string& password);
    // Stores (or replaces) a key of an existing account, derived with the
    // account's salt and iterations so one SCRAM exchange checks them all.
    // False if there is no such account or the secret is not valid SASLprep.
    bool putKeyIn(storage::Connection& c, const std::string& host, const std::string& username,
                  const std::string& keyId, const std::string& name, std::string_view secret);

    bool isHost(const std::string& host) const;

  private:
    // Runs op on a storage thread and reports its status on replyTo; a
    // storage error or a full queue is Unavailable.
    void runStatus(const char* what, std::string subject, Worker* replyTo, std::function<void(Status)> done,
                   std::function<Status(storage::Connection&)> op);

    storage::Pool& pool_;
    Hooks& hooks_;
    std::vector<std::string> hosts_;
    int iterations_;
};

const char* toString(Accounts::Status status);

}  // namespace xmppd
