#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "storage/connection.hpp"
#include "storage/migrations.hpp"

namespace xmppd::sms {

// The abuse limits of phone-number registration; all of them hold across
// restarts because the counters live in the tables below.
struct PinLimits {
    int pinLength = 5;
    int64_t pinLifetime = 300;  // seconds
    int maxAttempts = 5;        // wrong PINs before the PIN is burned
    int perNumberPerHour = 3;   // PIN requests per number
    int perIpPerHour = 10;      // PIN requests per source address
};

// Tables (module "sms_register"): sms_pins(host, phone, pin_hash, salt,
// created_at, expires_at, attempts; one outstanding PIN per number),
// sms_requests(host, phone, ip, at; the last hour's PIN requests, for the
// rate limits), sms_phone_accounts(host, phone, username, created_at).
std::span<const storage::Migration> migrations();

struct PinRequest {
    enum class Outcome { Granted, Limited };
    Outcome outcome = Outcome::Granted;
    std::string pin;         // Granted: to be texted, never stored in clear
    int64_t retryAfter = 0;  // Limited: seconds
    std::string error;       // Limited: "rate-limited" | "pin-outstanding"
    std::string text;        // Limited: for people
};

// In the caller's transaction: applies the limits, then stores a new PIN
// (hashed) and counts the request. `now` in Unix seconds.
PinRequest requestPin(storage::Connection& c, const std::string& host, const std::string& phone,
                      const std::string& ip, const PinLimits& limits, int64_t now);
// Undoes a granted request whose SMS could not be sent: the PIN goes and
// the request does not count against the user's limits.
void withdrawPin(storage::Connection& c, const std::string& host, const std::string& phone,
                 const std::string& ip, int64_t at);

struct PinCheck {
    enum class Outcome { Ok, NoPin, Expired, Wrong, Burned };
    Outcome outcome = Outcome::NoPin;
    int attemptsLeft = 0;
};

// In the caller's transaction: compares in constant time; a match or the
// last wrong attempt removes the PIN.
PinCheck checkPin(storage::Connection& c, const std::string& host, const std::string& phone,
                  const std::string& pin, const PinLimits& limits, int64_t now);

struct PendingPin {
    std::string phone;
    int64_t createdAt = 0;
    int64_t expiresAt = 0;
    int attempts = 0;
};
std::vector<PendingPin> pendingPins(storage::Connection& c, const std::string& host, int64_t now);

// The phone number an account was registered with.
void recordPhoneAccount(storage::Connection& c, const std::string& host, const std::string& phone,
                        const std::string& username, int64_t now);
int64_t removePhoneAccount(storage::Connection& c, const std::string& host, const std::string& username);

// A uniformly random string of `length` decimal digits.
std::string randomPin(int length);

}  // namespace xmppd::sms
