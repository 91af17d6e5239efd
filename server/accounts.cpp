#include "server/accounts.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "server/hooks.hpp"
#include "server/worker.hpp"
#include "storage/accounts.hpp"
#include "storage/pool.hpp"
#include "xmpp/jid.hpp"

namespace xmppd {

using xmpp::sasl::ScramHash;
namespace sasl = xmpp::sasl;

const char* toString(Accounts::Status status) {
    switch (status) {
        case Accounts::Status::Ok:
            return "ok";
        case Accounts::Status::Exists:
            return "account already exists";
        case Accounts::Status::NotFound:
            return "no such account";
        case Accounts::Status::BadPassword:
            return "wrong password";
        case Accounts::Status::Invalid:
            return "invalid username, host or password";
        case Accounts::Status::Unavailable:
            return "storage unavailable, try again later";
    }
    return "?";
}

namespace {

// Delivers a callback's result on the requesting worker.
template <typename... Args>
void reply(Worker* to, std::function<void(Args...)> fn, Args... args) {
    if (to) {
        to->post([fn = std::move(fn), ... args = std::move(args)]() mutable { fn(std::move(args)...); });
    } else {
        fn(std::move(args)...);
    }
}

storage::Account makeAccount(const std::string& host, const std::string& user, const std::string& password,
                             int iterations) {
    storage::Account a;
    a.host = host;
    a.username = user;
    std::string salt = sasl::randomBytes(16);
    auto sha1 =
        sasl::deriveScramCredentials(ScramHash::Sha1, password, salt, static_cast<uint32_t>(iterations));
    auto sha256 =
        sasl::deriveScramCredentials(ScramHash::Sha256, password, salt, static_cast<uint32_t>(iterations));
    a.salt = sasl::base64Encode(salt);
    a.iterations = iterations;
    a.storedKeySha1 = sasl::base64Encode(sha1.storedKey);
    a.serverKeySha1 = sasl::base64Encode(sha1.serverKey);
    a.storedKeySha256 = sasl::base64Encode(sha256.storedKey);
    a.serverKeySha256 = sasl::base64Encode(sha256.serverKey);
    a.createdAt =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    return a;
}

int64_t nowSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

bool Accounts::createIn(storage::Connection& c, const std::string& host, const std::string& username,
                        std::string_view password) {
    if (!storage::accounts::create(c, makeAccount(host, username, std::string(password), iterations_))) {
        return false;
    }
    hooks_.accountCreated.run(AccountEvent{host, username});
    return true;
}

bool Accounts::putKeyIn(storage::Connection& c, const std::string& host, const std::string& username,
                        const std::string& keyId, const std::string& name, std::string_view secret) {
    auto prepared = sasl::saslPrep(secret);
    auto account = storage::accounts::find(c, host, username);
    if (!prepared || !account) {
        return false;
    }
    auto salt = sasl::base64Decode(account->salt).value_or("");
    auto iterations = static_cast<uint32_t>(account->iterations);
    auto sha1 = sasl::deriveScramCredentials(ScramHash::Sha1, *prepared, salt, iterations);
    auto sha256 = sasl::deriveScramCredentials(ScramHash::Sha256, *prepared, salt, iterations);
    storage::AccountKey key;
    key.id = keyId;
    key.name = name;
    key.storedKeySha1 = sasl::base64Encode(sha1.storedKey);
    key.serverKeySha1 = sasl::base64Encode(sha1.serverKey);
    key.storedKeySha256 = sasl::base64Encode(sha256.storedKey);
    key.serverKeySha256 = sasl::base64Encode(sha256.serverKey);
    key.createdAt = nowSeconds();
    storage::accounts::putKey(c, host, username, key);
    return true;
}

void Accounts::keyUsed(std::string username, std::string host, std::string keyId) {
    pool_.submit([username, host, keyId](storage::Connection& c) {
        try {
            storage::accounts::touchKey(c, host, username, keyId, nowSeconds());
        } catch (const storage::Error& e) {
            spdlog::debug("accounts: last use of a key of {}@{}: {}", username, host, e.what());
        }
    });
}

Accounts::Accounts(storage::Pool& pool, Hooks& hooks, std::vector<std::string> hosts, int iterations)
    : pool_(pool), hooks_(hooks), hosts_(std::move(hosts)), iterations_(iterations) {}

bool Accounts::isHost(const std::string& host) const {
    return std::find(hosts_.begin(), hosts_.end(), host) != hosts_.end();
}

void Accounts::runStatus(const char* what, std::string subject, Worker* replyTo,
                         std::function<void(Status)> done, std::function<Status(storage::Connection&)> op) {
    bool ok = pool_.submit([what, subject, replyTo, done, op = std::move(op)](storage::Connection& c) {
        Status s;
        try {
            s = op(c);
        } catch (const storage::Error& e) {
            spdlog::warn("accounts: {} {}: {}", what, subject, e.what());
            s = Status::Unavailable;
        }
        reply(replyTo, done, s);
    });
    if (!ok) {
        reply(replyTo, done, Status::Unavailable);
    }
}

void Accounts::create(std::string username, std::string host, std::string password, Worker* replyTo,
                      std::function<void(Status)> done) {
    auto user = xmpp::prepLocalpart(username);
    auto pass = sasl::saslPrep(password);
    if (!user || !pass || pass->empty() || !isHost(host)) {
        reply(replyTo, done, Status::Invalid);
        return;
    }
    runStatus("create", *user + "@" + host, replyTo, done,
              [this, u = *user, host, p = *pass](storage::Connection& c) {
                  if (!storage::accounts::create(c, makeAccount(host, u, p, iterations_))) {
                      return Status::Exists;
                  }
                  hooks_.accountCreated.run(AccountEvent{host, u});
                  return Status::Ok;
              });
}

void Accounts::changePassword(std::string username, std::string host, std::string password, Worker* replyTo,
                              std::function<void(Status)> done) {
    auto user = xmpp::prepLocalpart(username);
    auto pass = sasl::saslPrep(password);
    if (!user || !pass || pass->empty() || !isHost(host)) {
        reply(replyTo, done, Status::Invalid);
        return;
    }
    runStatus("change password", *user + "@" + host, replyTo, done,
              [this, u = *user, host, p = *pass](storage::Connection& c) {
                  return changePasswordIn(c, host, u, p) ? Status::Ok : Status::NotFound;
              });
}

bool Accounts::changePasswordIn(storage::Connection& c, const std::string& host, const std::string& u,
                                const std::string& p) {
    auto fresh = makeAccount(host, u, p, iterations_);
    // Device keys were derived with the account's salt and iterations: keep
    // them, so those keys keep working.
    auto old = storage::accounts::find(c, host, u);
    if (old && !storage::accounts::keys(c, host, u).empty()) {
        auto salt = sasl::base64Decode(old->salt).value_or("");
        auto it = static_cast<uint32_t>(old->iterations);
        auto sha1 = sasl::deriveScramCredentials(ScramHash::Sha1, p, salt, it);
        auto sha256 = sasl::deriveScramCredentials(ScramHash::Sha256, p, salt, it);
        fresh.salt = old->salt;
        fresh.iterations = old->iterations;
        fresh.storedKeySha1 = sasl::base64Encode(sha1.storedKey);
        fresh.serverKeySha1 = sasl::base64Encode(sha1.serverKey);
        fresh.storedKeySha256 = sasl::base64Encode(sha256.storedKey);
        fresh.serverKeySha256 = sasl::base64Encode(sha256.serverKey);
    }
    return storage::accounts::updateCredentials(c, fresh);
}

void Accounts::remove(std::string username, std::string host, Worker* replyTo,
                      std::function<void(Status)> done) {
    auto user = xmpp::prepLocalpart(username);
    if (!user || !isHost(host)) {
        reply(replyTo, done, Status::Invalid);
        return;
    }
    runStatus("remove", *user + "@" + host, replyTo, done, [this, u = *user, host](storage::Connection& c) {
        if (!storage::accounts::remove(c, host, u)) {
            return Status::NotFound;
        }
        hooks_.accountRemoved.run(AccountEvent{host, u});
        return Status::Ok;
    });
}

void Accounts::exists(std::string username, std::string host, Worker* replyTo,
                      std::function<void(Status)> done) {
    auto user = xmpp::prepLocalpart(username);
    if (!user || !isHost(host)) {
        reply(replyTo, done, Status::Invalid);
        return;
    }
    runStatus("lookup", *user + "@" + host, replyTo, done, [u = *user, host](storage::Connection& c) {
        return storage::accounts::find(c, host, u) ? Status::Ok : Status::NotFound;
    });
}

void Accounts::list(std::string host, Worker* replyTo,
                    std::function<void(Status, std::vector<std::string>)> done) {
    if (!isHost(host)) {
        reply(replyTo, done, Status::Invalid, std::vector<std::string>{});
        return;
    }
    bool ok = pool_.submit([host, replyTo, done](storage::Connection& c) {
        try {
            reply(replyTo, done, Status::Ok, storage::accounts::list(c, host));
        } catch (const storage::Error& e) {
            reply(replyTo, done, Status::Unavailable, std::vector<std::string>{});
        }
    });
    if (!ok) {
        reply(replyTo, done, Status::Unavailable, std::vector<std::string>{});
    }
}

void Accounts::scramCredentials(std::string username, std::string host, ScramHash hash, Worker* replyTo,
                                std::function<void(Status, std::optional<sasl::ScramCredentials>)> done) {
    using Creds = std::optional<sasl::ScramCredentials>;
    bool ok = pool_.submit([username, host, hash, replyTo, done](storage::Connection& c) {
        try {
            auto a = storage::accounts::find(c, host, username);
            if (!a) {
                reply(replyTo, done, Status::NotFound, Creds{});
                return;
            }
            sasl::ScramCredentials creds;
            creds.salt = sasl::base64Decode(a->salt).value_or("");
            creds.iterations = static_cast<uint32_t>(a->iterations);
            bool sha1 = hash == ScramHash::Sha1;
            creds.storedKey = sasl::base64Decode(sha1 ? a->storedKeySha1 : a->storedKeySha256).value_or("");
            creds.serverKey = sasl::base64Decode(sha1 ? a->serverKeySha1 : a->serverKeySha256).value_or("");
            for (auto& k : storage::accounts::keys(c, host, username)) {
                creds.alternates.push_back(
                    {std::move(k.id),
                     sasl::base64Decode(sha1 ? k.storedKeySha1 : k.storedKeySha256).value_or(""),
                     sasl::base64Decode(sha1 ? k.serverKeySha1 : k.serverKeySha256).value_or("")});
            }
            reply(replyTo, done, Status::Ok, Creds{std::move(creds)});
        } catch (const storage::Error& e) {
            spdlog::warn("accounts: lookup {}@{}: {}", username, host, e.what());
            reply(replyTo, done, Status::Unavailable, Creds{});
        }
    });
    if (!ok) {
        reply(replyTo, done, Status::Unavailable, Creds{});
    }
}

void Accounts::checkPassword(std::string username, std::string host, std::string password, Worker* replyTo,
                             std::function<void(Status, std::string)> done) {
    bool ok = pool_.submit([username, host, password, replyTo, done](storage::Connection& c) {
        try {
            auto a = storage::accounts::find(c, host, username);
            if (!a) {
                reply(replyTo, done, Status::NotFound, std::string());
                return;
            }
            // One derivation serves every key: they share the account's salt.
            auto salt = sasl::base64Decode(a->salt).value_or("");
            auto derived = sasl::deriveScramCredentials(ScramHash::Sha256, password, salt,
                                                        static_cast<uint32_t>(a->iterations));
            if (sasl::constantTimeEqual(derived.storedKey,
                                        sasl::base64Decode(a->storedKeySha256).value_or(""))) {
                reply(replyTo, done, Status::Ok, std::string());
                return;
            }
            for (auto& k : storage::accounts::keys(c, host, username)) {
                if (sasl::constantTimeEqual(derived.storedKey,
                                            sasl::base64Decode(k.storedKeySha256).value_or(""))) {
                    reply(replyTo, done, Status::Ok, std::move(k.id));
                    return;
                }
            }
            reply(replyTo, done, Status::BadPassword, std::string());
        } catch (const storage::Error& e) {
            spdlog::warn("accounts: check {}@{}: {}", username, host, e.what());
            reply(replyTo, done, Status::Unavailable, std::string());
        }
    });
    if (!ok) {
        reply(replyTo, done, Status::Unavailable, std::string());
    }
}

}  // namespace xmppd
