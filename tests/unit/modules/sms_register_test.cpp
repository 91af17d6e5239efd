// Phone-number registration: the number parsing (phone.cpp, libphonenumber)
// and the PIN policy with its tables (pins.cpp) on SQLite and PostgreSQL,
// with explicit clocks. The HTTP protocol is driven against the real server
// in tests/integration/test_sms_register*.py.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <set>
#include <thread>
#include <variant>

#include "modules/sms_register/gateway.hpp"
#include "modules/sms_register/phone.hpp"
#include "modules/sms_register/pins.hpp"
#include "tests/unit/storage/test_db.hpp"

using storage::test::TestDb;
using namespace xmppd::sms;

namespace {

const std::string kHost = "example.org";
constexpr int64_t kT0 = 1700000000;
constexpr int64_t kHour = 3600;

PhoneNumber parsed(const std::string& input) {
    auto r = parsePhone(input);
    INFO(input);
    REQUIRE(std::holds_alternative<PhoneNumber>(r));
    return std::get<PhoneNumber>(r);
}

std::string refused(const std::string& input) {
    auto r = parsePhone(input);
    INFO(input);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
}

std::unique_ptr<storage::Connection> migrated(TestDb& db) {
    auto conn = db.connect();
    storage::migrate(*conn, migrations());
    return conn;
}

PinLimits limits() {
    PinLimits l;
    l.pinLength = 5;
    l.pinLifetime = 300;
    l.maxAttempts = 3;
    l.perNumberPerHour = 2;
    l.perIpPerHour = 3;
    return l;
}

// requestPin and checkPin run in their caller's transaction, as in the module.
PinRequest request(storage::Connection& c, const std::string& phone, const std::string& ip, int64_t now,
                   const PinLimits& l = limits(), const std::string& host = kHost) {
    storage::Transaction tx(c);
    auto r = requestPin(c, host, phone, ip, l, now);
    tx.commit();
    return r;
}

PinCheck check(storage::Connection& c, const std::string& phone, const std::string& pin, int64_t now,
               const PinLimits& l = limits()) {
    storage::Transaction tx(c);
    auto r = checkPin(c, kHost, phone, pin, l, now);
    tx.commit();
    return r;
}

std::string granted(storage::Connection& c, const std::string& phone, const std::string& ip, int64_t now,
                    const PinLimits& l = limits()) {
    auto r = request(c, phone, ip, now, l);
    INFO(phone << " from " << ip << " at " << now << ": " << r.error);
    REQUIRE(r.outcome == PinRequest::Outcome::Granted);
    return r.pin;
}

std::string wrong(const std::string& pin) {
    std::string out = pin;
    for (char& ch : out) {
        ch = static_cast<char>('0' + (ch - '0' + 1) % 10);
    }
    return out;
}

}  // namespace

// ------------------------------------------------------------------ phone

TEST_CASE("sms phone: typed forms normalised to E.164 with their region", "[modules][sms_register]") {
    auto de = parsed("+49 151 1234 5678");
    CHECK(de.e164 == "+4915112345678");
    CHECK(de.region == "DE");
    CHECK(parsed("+4915112345678").e164 == "+4915112345678");
    CHECK(parsed("+49 (151) 1234-5678").e164 == "+4915112345678");
    CHECK(parsed("+49-151-12345678").e164 == "+4915112345678");
    auto us = parsed("+1 650-253-0000");
    CHECK(us.e164 == "+16502530000");
    CHECK(us.region == "US");
    auto fr = parsed("+33 6 12 34 56 78");
    CHECK(fr.e164 == "+33612345678");
    CHECK(fr.region == "FR");
    CHECK(parsed("+44 7400 123456").region == "GB");
}

TEST_CASE("sms phone: refusals name the problem", "[modules][sms_register]") {
    const std::string international =
        "the phone number must be in international form, starting with + and the country code";
    CHECK(refused("") == "the phone number is empty");
    CHECK(refused("12345") == international);
    CHECK(refused("hello") == international);
    CHECK(refused("0151 1234 5678") == international);
    CHECK(refused(" +4915112345678") == international);
    CHECK(refused("+99912") == "unknown country calling code");
    CHECK(refused("+hello") == "not a phone number");
    CHECK(refused("+49 151") == "not a valid phone number for its country");
    CHECK(refused("+4915112345678901234") == "not a valid phone number for its country");
    CHECK(refused("+4915112345678901234567") == "the phone number is too long");
    CHECK(refused("+" + std::string(64, '1')) == "the phone number is too long");
}

// ------------------------------------------------------------------ randomPin

TEST_CASE("sms pins: randomPin gives the asked number of decimal digits", "[modules][sms_register]") {
    for (int length : {4, 5, 6, 10}) {
        for (int i = 0; i < 50; ++i) {
            auto pin = randomPin(length);
            REQUIRE(static_cast<int>(pin.size()) == length);
            REQUIRE(pin.find_first_not_of("0123456789") == std::string::npos);
        }
    }
    // Every digit in every place, and (almost surely) no PIN twice.
    std::set<std::string> seen;
    std::set<char> first, last;
    for (int i = 0; i < 1000; ++i) {
        auto pin = randomPin(6);
        seen.insert(pin);
        first.insert(pin.front());
        last.insert(pin.back());
    }
    CHECK(first.size() == 10);
    CHECK(last.size() == 10);
    CHECK(seen.size() > 990);
}

// ------------------------------------------------------------------ requestPin

STORAGE_TEST_CASE("sms pins: a PIN is granted, stored hashed and outstanding until it expires",
                  "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    auto pin = granted(*c, "+4915112345678", "192.0.2.1", kT0);
    CHECK(pin.size() == 5);
    CHECK(pin.find_first_not_of("0123456789") == std::string::npos);

    // Never in clear.
    auto row = c->exec("SELECT pin_hash, salt FROM sms_pins WHERE host = $1 AND phone = $2",
                       {kHost, std::string("+4915112345678")});
    REQUIRE(row.rows.size() == 1);
    CHECK(row.rows[0].text(0).find(pin) == std::string::npos);
    CHECK(row.rows[0].text(1).find(pin) == std::string::npos);

    auto pending = pendingPins(*c, kHost, kT0 + 10);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].phone == "+4915112345678");
    CHECK(pending[0].createdAt == kT0);
    CHECK(pending[0].expiresAt == kT0 + 300);
    CHECK(pending[0].attempts == 0);

    // Outstanding: a second request waits for the first PIN's expiry, from
    // any address.
    auto again = request(*c, "+4915112345678", "198.51.100.7", kT0 + 100);
    CHECK(again.outcome == PinRequest::Outcome::Limited);
    CHECK(again.error == "pin-outstanding");
    CHECK(again.retryAfter == 200);
    CHECK(again.pin.empty());
    CHECK(request(*c, "+4915112345678", "192.0.2.1", kT0 + 299).retryAfter == 1);

    // Expired: no longer pending, and a new PIN replaces it.
    CHECK(pendingPins(*c, kHost, kT0 + 300).empty());
    auto second = granted(*c, "+4915112345678", "192.0.2.1", kT0 + 300);
    pending = pendingPins(*c, kHost, kT0 + 301);
    REQUIRE(pending.size() == 1);
    CHECK(pending[0].createdAt == kT0 + 300);
    CHECK(check(*c, "+4915112345678", second, kT0 + 301).outcome == PinCheck::Outcome::Ok);
}

STORAGE_TEST_CASE("sms pins: per-number limit over a sliding hour", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    const std::string phone = "+4915112345678";
    auto pin = granted(*c, phone, "192.0.2.1", kT0);
    REQUIRE(check(*c, phone, pin, kT0 + 5).outcome == PinCheck::Outcome::Ok);
    pin = granted(*c, phone, "192.0.2.2", kT0 + 600);
    REQUIRE(check(*c, phone, pin, kT0 + 605).outcome == PinCheck::Outcome::Ok);

    // Two in the last hour: the next one when the oldest is an hour old.
    auto limited = request(*c, phone, "192.0.2.3", kT0 + 1000);
    CHECK(limited.outcome == PinRequest::Outcome::Limited);
    CHECK(limited.error == "rate-limited");
    CHECK(limited.text.find("this number") != std::string::npos);
    CHECK(limited.retryAfter == kHour - 1000);
    // Other numbers are not concerned.
    granted(*c, "+4915112345679", "192.0.2.4", kT0 + 1000);
    CHECK(request(*c, phone, "192.0.2.3", kT0 + kHour - 1).retryAfter == 1);
    // Refusals are not counted: at kT0 + 1 hour only the second request is
    // within the hour.
    granted(*c, phone, "192.0.2.3", kT0 + kHour);
}

STORAGE_TEST_CASE("sms pins: per-address limit, and hosts apart", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    for (int i = 0; i < 3; ++i) {
        granted(*c, "+491511234567" + std::to_string(i), "2001:db8::1", kT0 + i * 10);
    }
    auto limited = request(*c, "+4915112345679", "2001:db8::1", kT0 + 100);
    CHECK(limited.outcome == PinRequest::Outcome::Limited);
    CHECK(limited.error == "rate-limited");
    CHECK(limited.text.find("this address") != std::string::npos);
    CHECK(limited.retryAfter == kHour - 100);
    // The number from another address, and the address on another host.
    granted(*c, "+4915112345679", "2001:db8::2", kT0 + 100);
    auto otherHost = request(*c, "+4915112345679", "2001:db8::1", kT0 + 100, limits(), "example.com");
    CHECK(otherHost.outcome == PinRequest::Outcome::Granted);
    CHECK(pendingPins(*c, "example.com", kT0 + 100).size() == 1);
    CHECK(pendingPins(*c, kHost, kT0 + 100).size() == 4);
    // An hour after the first, one request is allowed again.
    granted(*c, "+4915112340000", "2001:db8::1", kT0 + kHour);
    CHECK(request(*c, "+4915112340001", "2001:db8::1", kT0 + kHour).error == "rate-limited");
}

STORAGE_TEST_CASE("sms pins: a withdrawn request leaves no PIN and does not count",
                  "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    auto l = limits();
    l.perNumberPerHour = 1;
    l.perIpPerHour = 1;
    const std::string phone = "+4915112345678";
    for (int i = 0; i < 3; ++i) {
        auto pin = granted(*c, phone, "192.0.2.1", kT0 + i, l);
        withdrawPin(*c, kHost, phone, "192.0.2.1", kT0 + i);
        CHECK(pendingPins(*c, kHost, kT0 + i).empty());
        CHECK(check(*c, phone, pin, kT0 + i, l).outcome == PinCheck::Outcome::NoPin);
    }
    // Withdrawing another request (another time) leaves this one alone.
    auto pin = granted(*c, phone, "192.0.2.1", kT0 + 10, l);
    withdrawPin(*c, kHost, phone, "192.0.2.1", kT0 + 9);
    CHECK(request(*c, phone, "192.0.2.1", kT0 + 11, l).error == "pin-outstanding");
    CHECK(check(*c, phone, pin, kT0 + 12, l).outcome == PinCheck::Outcome::Ok);
    CHECK(request(*c, phone, "192.0.2.1", kT0 + 13, l).error == "rate-limited");
}

// ------------------------------------------------------------------ checkPin

STORAGE_TEST_CASE("sms pins: wrong PINs count down, the last one burns the PIN", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    const std::string phone = "+4915112345678";
    CHECK(check(*c, phone, "12345", kT0).outcome == PinCheck::Outcome::NoPin);
    auto pin = granted(*c, phone, "192.0.2.1", kT0);

    auto first = check(*c, phone, wrong(pin), kT0 + 1);
    CHECK(first.outcome == PinCheck::Outcome::Wrong);
    CHECK(first.attemptsLeft == 2);
    CHECK(pendingPins(*c, kHost, kT0 + 1).at(0).attempts == 1);
    auto second = check(*c, phone, "", kT0 + 2);  // anything not the PIN is wrong
    CHECK(second.outcome == PinCheck::Outcome::Wrong);
    CHECK(second.attemptsLeft == 1);
    auto third = check(*c, phone, wrong(pin), kT0 + 3);
    CHECK(third.outcome == PinCheck::Outcome::Burned);
    CHECK(third.attemptsLeft == 0);
    CHECK(pendingPins(*c, kHost, kT0 + 3).empty());
    CHECK(check(*c, phone, pin, kT0 + 4).outcome == PinCheck::Outcome::NoPin);
    // Burned is not outstanding: a new PIN may be asked for (the second of
    // the hour), and the count starts again.
    pin = granted(*c, phone, "192.0.2.1", kT0 + 5);
    CHECK(check(*c, phone, wrong(pin), kT0 + 6).attemptsLeft == 2);
    CHECK(check(*c, phone, pin, kT0 + 7).outcome == PinCheck::Outcome::Ok);
}

STORAGE_TEST_CASE("sms pins: the right PIN once, only for its number", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    auto a = granted(*c, "+4915112345678", "192.0.2.1", kT0);
    auto b = granted(*c, "+4915112345679", "192.0.2.1", kT0);
    if (a != b) {
        CHECK(check(*c, "+4915112345679", a, kT0 + 1).outcome == PinCheck::Outcome::Wrong);
    }
    auto ok = check(*c, "+4915112345678", a, kT0 + 1);
    CHECK(ok.outcome == PinCheck::Outcome::Ok);
    CHECK(check(*c, "+4915112345678", a, kT0 + 2).outcome == PinCheck::Outcome::NoPin);
    CHECK(check(*c, "+4915112345679", b, kT0 + 2).outcome == PinCheck::Outcome::Ok);
    CHECK(pendingPins(*c, kHost, kT0 + 2).empty());
}

STORAGE_TEST_CASE("sms pins: expiry by the clock", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    const std::string phone = "+4915112345678";
    auto pin = granted(*c, phone, "192.0.2.1", kT0);
    // The last second of its life.
    CHECK(check(*c, phone, wrong(pin), kT0 + 299).outcome == PinCheck::Outcome::Wrong);
    // expires_at itself is too late, even with the right PIN; then it is gone.
    CHECK(check(*c, phone, pin, kT0 + 300).outcome == PinCheck::Outcome::Expired);
    CHECK(check(*c, phone, pin, kT0 + 301).outcome == PinCheck::Outcome::NoPin);

    pin = granted(*c, phone, "192.0.2.1", kT0 + 400);
    CHECK(check(*c, phone, wrong(pin), kT0 + 5000).outcome == PinCheck::Outcome::Expired);
    CHECK(check(*c, phone, pin, kT0 + 5001).outcome == PinCheck::Outcome::NoPin);
}

// ------------------------------------------------------------------ concurrency

// The server's PostgreSQL pool runs jobs on several connections at once
// (SQLite gets one connection, so nothing runs concurrently there). A job
// on a second connection that starts while the first one's transaction is
// open must wait for it and then see what it wrote.
template <typename Job>
auto whileHeld(TestDb& db, storage::Connection& first, Job second) {
    auto other = db.connect();
    auto result = std::async(std::launch::async, [&] { return second(*other); });
    // Give the second job time to read, if it does not wait.
    CHECK(result.wait_for(std::chrono::milliseconds(300)) == std::future_status::timeout);
    first.commit();
    return result.get();
}

STORAGE_TEST_CASE("sms pins: concurrent checks of one number take turns", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available() || db.dialect() != storage::Dialect::Postgres) {
        return;
    }
    auto c = migrated(db);
    const std::string phone = "+4915112345678";
    auto pin = granted(*c, phone, "192.0.2.1", kT0);

    c->begin();
    CHECK(checkPin(*c, kHost, phone, wrong(pin), limits(), kT0 + 1).attemptsLeft == 2);
    auto second = whileHeld(
        db, *c, [&](storage::Connection& other) { return check(other, phone, wrong(pin), kT0 + 1); });
    CHECK(second.outcome == PinCheck::Outcome::Wrong);
    CHECK(second.attemptsLeft == 1);  // not 2: the first guess counted

    c->begin();
    CHECK(checkPin(*c, kHost, phone, pin, limits(), kT0 + 2).outcome == PinCheck::Outcome::Ok);
    auto late =
        whileHeld(db, *c, [&](storage::Connection& other) { return check(other, phone, pin, kT0 + 2); });
    CHECK(late.outcome == PinCheck::Outcome::NoPin);  // one PIN, one success
}

STORAGE_TEST_CASE("sms pins: concurrent requests take turns", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available() || db.dialect() != storage::Dialect::Postgres) {
        return;
    }
    auto c = migrated(db);
    auto l = limits();
    l.perIpPerHour = 1;

    c->begin();
    CHECK(requestPin(*c, kHost, "+4915112345678", "192.0.2.1", l, kT0).outcome ==
          PinRequest::Outcome::Granted);
    auto second = whileHeld(db, *c, [&](storage::Connection& other) {
        return request(other, "+4915112345679", "192.0.2.1", kT0, l);
    });
    CHECK(second.error == "rate-limited");

    c->begin();
    CHECK(requestPin(*c, kHost, "+4915112340000", "192.0.2.2", l, kT0).outcome ==
          PinRequest::Outcome::Granted);
    auto same = whileHeld(db, *c, [&](storage::Connection& other) {
        return request(other, "+4915112340000", "192.0.2.3", kT0, l);
    });
    CHECK(same.error == "pin-outstanding");
}

// ------------------------------------------------------------------ accounts

STORAGE_TEST_CASE("sms pins: the number of an account, recorded and forgotten", "[modules][sms_register]") {
    TestDb db(TestType::dialect);
    if (!db.available()) {
        return;
    }
    auto c = migrated(db);
    recordPhoneAccount(*c, kHost, "+4915112345678", "4915112345678", kT0);
    recordPhoneAccount(*c, kHost, "+4915112345678", "4915112345678", kT0 + 10);  // a second device
    recordPhoneAccount(*c, "example.com", "+4915112345678", "4915112345678", kT0);
    auto rows = c->exec("SELECT username, created_at FROM sms_phone_accounts WHERE host = $1", {kHost});
    REQUIRE(rows.rows.size() == 1);
    CHECK(rows.rows[0].integer(1) == kT0);
    CHECK(removePhoneAccount(*c, kHost, "4915112345678") == 1);
    CHECK(removePhoneAccount(*c, kHost, "4915112345678") == 0);
    CHECK(removePhoneAccount(*c, "example.com", "4915112345678") == 1);
}

TEST_CASE("sms gateway: a body template is filled and escaped for its content type",
          "[modules][sms_register]") {
    GatewayConfig config;
    config.body = "To={phone}&Body={text}";
    CHECK(fillBody(config, "+4915112345678", "code 01967 & more") ==
          "To=%2B4915112345678&Body=code%2001967%20%26%20more");
    config.contentType = "application/json";
    config.body = R"({"to":"{phone}","text":"{text}"})";
    CHECK(fillBody(config, "+4915112345678", "say \"hi\"\n") ==
          R"({"to":"+4915112345678","text":"say \"hi\"\u000a"})");
    CHECK(fillTemplate("{pin}/{pin} on {host}", {{"{pin}", "123"}, {"{host}", "example.org"}}) ==
          "123/123 on example.org");
}
