#include "modules/sms_register/pins.hpp"

#include <algorithm>

#include "xmpp/sasl/crypto.hpp"

namespace xmppd::sms {

namespace sasl = xmpp::sasl;

namespace {

constexpr int64_t kHour = 3600;

const storage::Migration kMigrations[] = {
    {"sms_register", 1,
     "CREATE TABLE sms_pins (host TEXT NOT NULL, phone TEXT NOT NULL, pin_hash TEXT NOT NULL, "
     "salt TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, attempts INTEGER NOT NULL, "
     "PRIMARY KEY (host, phone));"
     "CREATE TABLE sms_requests (host TEXT NOT NULL, phone TEXT NOT NULL, ip TEXT NOT NULL, "
     "at BIGINT NOT NULL);"
     "CREATE INDEX sms_requests_phone ON sms_requests (host, phone, at);"
     "CREATE INDEX sms_requests_ip ON sms_requests (host, ip, at);"
     "CREATE TABLE sms_phone_accounts (host TEXT NOT NULL, phone TEXT NOT NULL, username TEXT NOT NULL, "
     "created_at BIGINT NOT NULL, PRIMARY KEY (host, phone))",
     "CREATE TABLE sms_pins (host TEXT COLLATE \"C\" NOT NULL, phone TEXT COLLATE \"C\" NOT NULL, "
     "pin_hash TEXT NOT NULL, salt TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, "
     "attempts INTEGER NOT NULL, PRIMARY KEY (host, phone));"
     "CREATE TABLE sms_requests (host TEXT COLLATE \"C\" NOT NULL, phone TEXT COLLATE \"C\" NOT NULL, "
     "ip TEXT COLLATE \"C\" NOT NULL, at BIGINT NOT NULL);"
     "CREATE INDEX sms_requests_phone ON sms_requests (host, phone, at);"
     "CREATE INDEX sms_requests_ip ON sms_requests (host, ip, at);"
     "CREATE TABLE sms_phone_accounts (host TEXT COLLATE \"C\" NOT NULL, phone TEXT COLLATE \"C\" NOT NULL, "
     "username TEXT COLLATE \"C\" NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (host, phone))"},
};

std::string pinHash(std::string_view salt, const std::string& phone, const std::string& pin) {
    return sasl::base64Encode(sasl::hmac(sasl::ScramHash::Sha256, salt, phone + ":" + pin));
}

// The oldest of the last hour's requests matching `column`, and how many.
std::pair<int64_t, int64_t> recent(storage::Connection& c, bool byIp, const std::string& host,
                                   const std::string& value, int64_t now) {
    auto r =
        byIp ? c.exec("SELECT COUNT(*), MIN(at) FROM sms_requests WHERE host = $1 AND ip = $2 AND at > $3",
                      {host, value, std::to_string(now - kHour)})
             : c.exec("SELECT COUNT(*), MIN(at) FROM sms_requests WHERE host = $1 AND phone = $2 AND at > $3",
                      {host, value, std::to_string(now - kHour)});
    const auto& row = r.rows.at(0);
    return {row.integer(0), row[1] ? row.integer(1) : now};
}

// PostgreSQL runs jobs on several connections at once, and a transaction
// there does not see what a concurrent one has not committed yet. Without a
// lock, concurrent PIN requests would each count the limits without the
// others and all be granted, and two for one number would collide on the
// primary key. All PIN requests of a host queue for one lock held to the
// end of the transaction: there are few of them and they are short. (SQLite
// has one connection, which serialises everything already.)
void lockRequests(storage::Connection& c, const std::string& host) {
    if (c.dialect() == storage::Dialect::Postgres) {
        // The first key is the module's own ("smsr"), apart from other locks.
        c.exec("SELECT pg_advisory_xact_lock(1936552818, hashtext($1))", {host});
    }
}

}  // namespace

std::span<const storage::Migration> migrations() {
    return kMigrations;
}

std::string randomPin(int length) {
    std::string pin;
    while (static_cast<int>(pin.size()) < length) {
        for (unsigned char b : sasl::randomBytes(16)) {
            // Rejection sampling: 250 is the largest multiple of 10 <= 256.
            if (b < 250 && static_cast<int>(pin.size()) < length) {
                pin.push_back(static_cast<char>('0' + b % 10));
            }
        }
    }
    return pin;
}

PinRequest requestPin(storage::Connection& c, const std::string& host, const std::string& phone,
                      const std::string& ip, const PinLimits& limits, int64_t now) {
    lockRequests(c, host);
    // The table holds one hour of history and no more.
    c.exec("DELETE FROM sms_requests WHERE host = $1 AND at <= $2", {host, std::to_string(now - kHour)});
    PinRequest out;
    auto limited = [&](std::string error, int64_t retryAfter, std::string text) {
        out.outcome = PinRequest::Outcome::Limited;
        out.error = std::move(error);
        out.retryAfter = std::max<int64_t>(1, retryAfter);
        out.text = std::move(text);
        return out;
    };
    auto pending = c.exec("SELECT expires_at FROM sms_pins WHERE host = $1 AND phone = $2", {host, phone});
    if (!pending.rows.empty() && pending.rows[0].integer(0) > now) {
        return limited("pin-outstanding", pending.rows[0].integer(0) - now,
                       "a PIN was already sent to this number and is still valid");
    }
    auto [numberCount, numberOldest] = recent(c, false, host, phone, now);
    if (numberCount >= limits.perNumberPerHour) {
        return limited("rate-limited", numberOldest + kHour - now,
                       "too many PIN requests for this number; try again later");
    }
    auto [ipCount, ipOldest] = recent(c, true, host, ip, now);
    if (ipCount >= limits.perIpPerHour) {
        return limited("rate-limited", ipOldest + kHour - now,
                       "too many PIN requests from this address; try again later");
    }
    out.pin = randomPin(limits.pinLength);
    std::string salt = sasl::randomBytes(16);
    c.exec("DELETE FROM sms_pins WHERE host = $1 AND phone = $2", {host, phone});
    c.exec(
        "INSERT INTO sms_pins (host, phone, pin_hash, salt, created_at, expires_at, attempts) "
        "VALUES ($1, $2, $3, $4, $5, $6, 0)",
        {host, phone, pinHash(salt, phone, out.pin), sasl::base64Encode(salt), std::to_string(now),
         std::to_string(now + limits.pinLifetime)});
    c.exec("INSERT INTO sms_requests (host, phone, ip, at) VALUES ($1, $2, $3, $4)",
           {host, phone, ip, std::to_string(now)});
    return out;
}

void withdrawPin(storage::Connection& c, const std::string& host, const std::string& phone,
                 const std::string& ip, int64_t at) {
    c.exec("DELETE FROM sms_pins WHERE host = $1 AND phone = $2 AND created_at = $3",
           {host, phone, std::to_string(at)});
    c.exec("DELETE FROM sms_requests WHERE host = $1 AND phone = $2 AND ip = $3 AND at = $4",
           {host, phone, ip, std::to_string(at)});
}

PinCheck checkPin(storage::Connection& c, const std::string& host, const std::string& phone,
                  const std::string& pin, const PinLimits& limits, int64_t now) {
    PinCheck out;
    // Locked on PostgreSQL until the transaction ends: concurrent checks of
    // one number take turns, each seeing the attempts counted and the PIN
    // removed by the one before. Else each of a burst of guesses would read
    // the same count (more guesses than maxAttempts) and a burst of right
    // PINs would each be Ok (one PIN, several devices).
    auto r =
        c.dialect() == storage::Dialect::Postgres
            ? c.exec(
                  "SELECT pin_hash, salt, expires_at, attempts FROM sms_pins WHERE host = $1 AND phone = $2 "
                  "FOR UPDATE",
                  {host, phone})
            : c.exec(
                  "SELECT pin_hash, salt, expires_at, attempts FROM sms_pins WHERE host = $1 AND phone = $2",
                  {host, phone});
    if (r.rows.empty()) {
        out.outcome = PinCheck::Outcome::NoPin;
        return out;
    }
    const auto& row = r.rows[0];
    if (row.integer(2) <= now) {
        c.exec("DELETE FROM sms_pins WHERE host = $1 AND phone = $2", {host, phone});
        out.outcome = PinCheck::Outcome::Expired;
        return out;
    }
    auto salt = sasl::base64Decode(row.text(1)).value_or("");
    if (sasl::constantTimeEqual(pinHash(salt, phone, pin), row.text(0))) {
        c.exec("DELETE FROM sms_pins WHERE host = $1 AND phone = $2", {host, phone});
        out.outcome = PinCheck::Outcome::Ok;
        return out;
    }
    int attempts = static_cast<int>(row.integer(3)) + 1;
    out.attemptsLeft = std::max(0, limits.maxAttempts - attempts);
    if (out.attemptsLeft == 0) {
        c.exec("DELETE FROM sms_pins WHERE host = $1 AND phone = $2", {host, phone});
        out.outcome = PinCheck::Outcome::Burned;
        return out;
    }
    c.exec("UPDATE sms_pins SET attempts = $3 WHERE host = $1 AND phone = $2",
           {host, phone, std::to_string(attempts)});
    out.outcome = PinCheck::Outcome::Wrong;
    return out;
}

std::vector<PendingPin> pendingPins(storage::Connection& c, const std::string& host, int64_t now) {
    auto r = c.exec(
        "SELECT phone, created_at, expires_at, attempts FROM sms_pins WHERE host = $1 AND expires_at > $2 "
        "ORDER BY created_at, phone",
        {host, std::to_string(now)});
    std::vector<PendingPin> out;
    for (const auto& row : r.rows) {
        out.push_back({row.text(0), row.integer(1), row.integer(2), static_cast<int>(row.integer(3))});
    }
    return out;
}

void recordPhoneAccount(storage::Connection& c, const std::string& host, const std::string& phone,
                        const std::string& username, int64_t now) {
    c.exec(
        "INSERT INTO sms_phone_accounts (host, phone, username, created_at) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (host, phone) DO UPDATE SET username = excluded.username",
        {host, phone, username, std::to_string(now)});
}

int64_t removePhoneAccount(storage::Connection& c, const std::string& host, const std::string& username) {
    return c.exec("DELETE FROM sms_phone_accounts WHERE host = $1 AND username = $2", {host, username})
        .affected;
}

}  // namespace xmppd::sms
