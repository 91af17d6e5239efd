#include "modules/sms_register/sms_register_module.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "modules/sms_register/gateway.hpp"
#include "modules/sms_register/phone.hpp"
#include "modules/sms_register/pins.hpp"
#include "server/accounts.hpp"
#include "server/http/http.hpp"
#include "server/router.hpp"
#include "server/session.hpp"
#include "storage/accounts.hpp"
#include "storage/pool.hpp"
#include "xmpp/errors.hpp"
#include "xmpp/sasl/crypto.hpp"
#include "xmpp/sasl/scram.hpp"

namespace xmppd::modules {

using nlohmann::json;

namespace {

constexpr size_t kMinKeyBytes = 16;
constexpr size_t kMaxKeyBytes = 1023;

int64_t now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string isoTime(int64_t t) {
    if (t == 0) {
        return "never";
    }
    std::time_t secs = t;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::set<std::string> regionList(const std::string& csv) {
    std::set<std::string> out;
    std::stringstream in(csv);
    std::string item;
    while (std::getline(in, item, ',')) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        for (char& ch : item) {
            ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        }
        if (!item.empty()) {
            out.insert(item);
        }
    }
    return out;
}

HttpResponse jsonReply(int status, const json& body) {
    HttpResponse r;
    r.status = status;
    r.body = body.dump();
    return r;
}

// The JSON object of a request body, or a 400 naming what is wrong.
std::variant<json, HttpResponse> parseBody(const HttpRequest& req) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) {
        return jsonError(400, "bad-request", "the body must be a JSON object");
    }
    return body;
}

std::optional<std::string> stringField(const json& body, const char* key) {
    auto it = body.find(key);
    if (it == body.end() || !it->is_string()) {
        return std::nullopt;
    }
    return it->get<std::string>();
}

}  // namespace

struct SmsRegisterModule::Impl : std::enable_shared_from_this<Impl> {
    storage::Pool* pool = nullptr;
    Accounts* accounts = nullptr;
    Router* router = nullptr;
    std::string host;
    sms::PinLimits limits;
    bool multiDevice = false;
    bool digitsOnly = true;  // jid_localpart: digits (default) or e164
    std::set<std::string> allow;
    std::set<std::string> deny;
    std::string messageTemplate;
    std::unique_ptr<sms::SmsGateway> gateway;

    std::string localpartFor(const std::string& e164) const { return digitsOnly ? e164.substr(1) : e164; }

    std::string textFor(const std::string& pin) const {
        return sms::fillTemplate(messageTemplate, {{"{pin}", pin}, {"{host}", host}});
    }

    // What became of a request, for either protocol: an HTTP status with a
    // JSON body on the HTTP API, a result or stanza error over XMPP.
    struct Outcome {
        int status = 200;
        std::string error;  // empty on success, else e.g. "wrong-pin"
        std::string text;
        int64_t retryAfter = 0;
        json body = json::object();
    };
    using Done = std::function<void(Outcome)>;

    static Outcome failure(int status, std::string error, std::string text, int64_t retryAfter = 0) {
        Outcome o;
        o.status = status;
        o.error = std::move(error);
        o.text = std::move(text);
        o.retryAfter = retryAfter;
        return o;
    }

    // A number we take, or the outcome refusing it.
    std::variant<sms::PhoneNumber, Outcome> checkPhone(const std::optional<std::string>& raw) const {
        if (!raw) {
            return failure(400, "bad-request", "\"phone\" is missing or not a string");
        }
        auto parsed = sms::parsePhone(*raw);
        if (auto* err = std::get_if<std::string>(&parsed)) {
            return failure(400, "invalid-phone", *err);
        }
        auto phone = std::get<sms::PhoneNumber>(parsed);
        if ((!allow.empty() && !allow.count(phone.region)) || deny.count(phone.region)) {
            return failure(403, "country-not-allowed",
                           "numbers of " + phone.region + " cannot register on this server");
        }
        return phone;
    }

    // Texts a PIN to the number, within the limits.
    void requestPin(const std::optional<std::string>& rawPhone, const std::string& ip, Done done) {
        auto checked = checkPhone(rawPhone);
        if (auto* bad = std::get_if<Outcome>(&checked)) {
            return done(std::move(*bad));
        }
        auto phone = std::get<sms::PhoneNumber>(checked).e164;
        auto self = shared_from_this();
        bool queued = pool->submit([self, phone, ip, done](storage::Connection& c) {
            sms::PinRequest granted;
            int64_t at = now();
            try {
                storage::Transaction tx(c);
                granted = sms::requestPin(c, self->host, phone, ip, self->limits, at);
                tx.commit();
            } catch (const storage::Error& e) {
                spdlog::warn("sms_register: PIN for {}: {}", phone, e.what());
                return done(failure(503, "unavailable", "storage is unavailable; try again later", 30));
            }
            if (granted.outcome == sms::PinRequest::Outcome::Limited) {
                spdlog::info("sms_register: PIN for {} from {} refused: {}", phone, ip, granted.text);
                return done(failure(429, granted.error, granted.text, granted.retryAfter));
            }
            self->gateway->send(
                phone, self->textFor(granted.pin), [self, phone, ip, at, done](std::string error) {
                    if (error.empty()) {
                        spdlog::info("sms_register: PIN sent to {} (requested from {})", phone, ip);
                        Outcome sent;
                        sent.status = 202;
                        sent.body = {{"status", "sent"}, {"phone", phone}};
                        return done(std::move(sent));
                    }
                    spdlog::warn("sms_register: no PIN could be sent to {}: {}", phone, error);
                    // Not the user's fault: the attempt does not count against
                    // them. The answer waits for the withdrawal, so that a
                    // retry right after the 503 finds neither the PIN nor the
                    // request (else it could be refused as pin-outstanding).
                    auto failed = failure(503, "gateway-failed",
                                          "the text message could not be sent; try again later", 30);
                    bool withdrawing =
                        self->pool->submit([self, phone, ip, at, done, failed](storage::Connection& c) {
                            try {
                                storage::Transaction tx(c);
                                sms::withdrawPin(c, self->host, phone, ip, at);
                                tx.commit();
                            } catch (const storage::Error& e) {
                                spdlog::warn("sms_register: withdrawing the PIN of {}: {}", phone, e.what());
                            }
                            done(failed);
                        });
                    if (!withdrawing) {
                        spdlog::warn("sms_register: the PIN of {} could not be withdrawn: storage is busy",
                                     phone);
                        done(failed);
                    }
                });
        });
        if (!queued) {
            done(failure(503, "unavailable", "the server is busy; try again later", 5));
        }
    }

    // Trades a PIN for a device key.
    void verify(const std::optional<std::string>& rawPhone, const std::optional<std::string>& pin,
                const std::optional<std::string>& key, const std::string& name, Done done) {
        auto checked = checkPhone(rawPhone);
        if (auto* bad = std::get_if<Outcome>(&checked)) {
            return done(std::move(*bad));
        }
        auto phone = std::get<sms::PhoneNumber>(checked).e164;
        if (!pin || pin->size() != static_cast<size_t>(limits.pinLength) ||
            pin->find_first_not_of("0123456789") != std::string::npos) {
            return done(
                failure(400, "bad-request",
                        "\"pin\" must be the " + std::to_string(limits.pinLength) + " digits sent by SMS"));
        }
        // The key is the account's password from now on: a client-generated
        // secret, long enough not to be guessed, and short enough for every
        // mechanism it logs in with: SASL PLAIN takes at most 1023 bytes per
        // field (xmpp/sasl/plain.cpp), so a longer key could only use SCRAM.
        if (!key || key->size() < kMinKeyBytes || key->size() > kMaxKeyBytes || !xmpp::sasl::saslPrep(*key)) {
            return done(failure(400, "bad-request",
                                "\"device_key\" must be a string of " + std::to_string(kMinKeyBytes) +
                                    " to " + std::to_string(kMaxKeyBytes) + " bytes"));
        }
        if (name.size() > 64 || !xmpp::sasl::isValidUtf8(name)) {
            return done(failure(400, "bad-request", "\"device_name\" must be UTF-8 of at most 64 bytes"));
        }
        auto self = shared_from_this();
        bool queued = pool->submit([self, phone, pin = *pin, key = *key, name, done](storage::Connection& c) {
            done(self->verifyIn(c, phone, pin, key, name));
        });
        if (!queued) {
            done(failure(503, "unavailable", "the server is busy; try again later", 5));
        }
    }

    Outcome verifyIn(storage::Connection& c, const std::string& phone, const std::string& pin,
                     const std::string& key, const std::string& name) {
        std::string user = localpartFor(phone);
        std::string deviceId = xmpp::sasl::base64Encode(xmpp::sasl::randomBytes(9));
        for (char& ch : deviceId) {
            ch = ch == '+' ? '-' : ch == '/' ? '_' : ch;
        }
        bool created = false;
        int64_t revoked = 0;
        sms::PinCheck check;
        try {
            storage::Transaction tx(c);
            check = sms::checkPin(c, host, phone, pin, limits, now());
            if (check.outcome == sms::PinCheck::Outcome::Ok) {
                // The account's own password is a random secret nobody
                // knows: the devices' keys are how it logs in.
                created =
                    accounts->createIn(c, host, user, xmpp::sasl::base64Encode(xmpp::sasl::randomBytes(32)));
                if (!multiDevice) {
                    revoked = storage::accounts::removeKeys(c, host, user);
                    if (!created) {
                        // An account that predates its phone registration
                        // (made by an administrator) loses its password too:
                        // from now on only the new device logs in.
                        accounts->changePasswordIn(c, host, user,
                                                   xmpp::sasl::base64Encode(xmpp::sasl::randomBytes(32)));
                    }
                }
                if (!accounts->putKeyIn(c, host, user, deviceId, name, key)) {
                    throw storage::Error(storage::Error::Kind::Other, "the account vanished");
                }
                sms::recordPhoneAccount(c, host, phone, user, now());
            }
            tx.commit();
        } catch (const storage::Error& e) {
            spdlog::warn("sms_register: verifying {}: {}", phone, e.what());
            return failure(503, "unavailable", "storage is unavailable; try again later", 30);
        }
        using O = sms::PinCheck::Outcome;
        switch (check.outcome) {
            case O::NoPin:
                return failure(404, "no-pin", "no PIN was requested for this number, or it was used");
            case O::Expired:
                return failure(410, "pin-expired", "the PIN expired; request a new one");
            case O::Wrong: {
                Outcome o = failure(403, "wrong-pin",
                                    "wrong PIN; " + std::to_string(check.attemptsLeft) + " attempts left");
                o.body["attempts_left"] = check.attemptsLeft;
                return o;
            }
            case O::Burned:
                return failure(429, "pin-burned", "too many wrong PINs: this PIN is void; request a new one",
                               1);
            case O::Ok:
                break;
        }
        std::string jid = user + "@" + host;
        spdlog::info("sms_register: {} verified on device {} ({}){}", jid, deviceId,
                     name.empty() ? "-" : name,
                     created   ? ", new account"
                     : revoked ? ", earlier devices revoked"
                               : "");
        if (!multiDevice) {
            // Every session so far used a key that is now gone.
            endSessions(jid, std::nullopt, "this number was registered on another device");
        }
        Outcome ok;
        ok.status = created ? 201 : 200;
        ok.body = {{"jid", jid}, {"device", deviceId}, {"created", created}};
        return ok;
    }

    // ---- the HTTP API ----

    static HttpResponse toHttp(const Outcome& o) {
        json body = o.body;
        if (!o.error.empty()) {
            body["error"] = o.error;
            body["text"] = o.text;
        }
        HttpResponse r = jsonReply(o.status, body);
        if (o.retryAfter > 0) {
            r.headers.emplace_back("Retry-After", std::to_string(o.retryAfter));
        }
        return r;
    }

    // POST /v1/register/pin {"phone": "+4915112345678"}
    void httpPin(const HttpRequest& req, HttpReply reply) {
        auto body = parseBody(req);
        if (auto* bad = std::get_if<HttpResponse>(&body)) {
            return reply(std::move(*bad));
        }
        requestPin(stringField(std::get<json>(body), "phone"), req.peer,
                   [reply](Outcome o) { reply(toHttp(o)); });
    }

    // POST /v1/register/verify {"phone", "pin", "device_key", "device_name"}
    void httpVerify(const HttpRequest& req, HttpReply reply) {
        auto body = parseBody(req);
        if (auto* bad = std::get_if<HttpResponse>(&body)) {
            return reply(std::move(*bad));
        }
        const json& j = std::get<json>(body);
        verify(stringField(j, "phone"), stringField(j, "pin"), stringField(j, "device_key"),
               stringField(j, "device_name").value_or(""), [reply](Outcome o) { reply(toHttp(o)); });
    }

    // ---- the same over XMPP: XEP-0077 with a XEP-0004 form ----

    static constexpr std::string_view kRegister = "jabber:iq:register";
    static constexpr std::string_view kData = "jabber:x:data";
    static constexpr std::string_view kFormType = "urn:xmppd:register:phone";

    xmpp::Element registrationForm() const {
        xmpp::Element query("query", std::string(kRegister));
        query.addChild("instructions", std::string(kRegister))
            .addText(
                "Enter your phone number in international form (+49...) to receive a PIN by SMS, then submit "
                "it again with the PIN and a key generated on this device; the key is your password.");
        auto& x = query.addChild("x", std::string(kData));
        x.setAttr("type", "form");
        x.addChild("title", std::string(kData)).addText("Register with your phone number");
        auto field = [&x](const char* var, const char* type, const char* label,
                          bool required) -> xmpp::Element& {
            auto& f = x.addChild("field", std::string(kData));
            f.setAttr("var", var).setAttr("type", type);
            if (label) {
                f.setAttr("label", label);
            }
            if (required) {
                f.addChild("required", std::string(kData));
            }
            return f;
        };
        field("FORM_TYPE", "hidden", nullptr, false).addChild("value", std::string(kData)).addText(kFormType);
        field("phone", "text-single", "Phone number", true);
        field("pin", "text-single", "PIN from the SMS (second step)", false);
        field("device_key", "text-private", "Device key (second step)", false);
        field("device_name", "text-single", "Device name", false);
        return query;
    }

    static std::optional<std::string> formValue(const xmpp::Element& x, std::string_view var) {
        for (const auto& f : x.children()) {
            if (!f.isText() && f.name() == "field" && f.attr("var") == var) {
                if (const auto* v = f.findChild("value", kData)) {
                    return v->text();
                }
            }
        }
        return std::nullopt;
    }

    static xmpp::Element toStanza(const xmpp::Element& iq, const Outcome& o) {
        using C = xmpp::StanzaCondition;
        using T = xmpp::StanzaErrorType;
        if (o.error.empty()) {
            xmpp::Element result = xmpp::makeIqResult(iq);
            if (o.body.contains("jid")) {
                // The JID the device logs in as, for clients that show it.
                auto& q = result.addChild("query", std::string(kRegister));
                q.addChild("username", std::string(kRegister))
                    .addText(o.body["jid"].get<std::string>().substr(
                        0, o.body["jid"].get<std::string>().find('@')));
            }
            return result;
        }
        std::string text =
            o.text + (o.retryAfter > 0 ? " (retry in " + std::to_string(o.retryAfter) + " s)" : "");
        xmpp::StanzaError e(C::BadRequest, T::Modify, text);
        switch (o.status) {
            case 400:
                e = xmpp::StanzaError(C::NotAcceptable, T::Modify, text);
                break;
            case 403:
                e = o.error == "wrong-pin" ? xmpp::StanzaError(C::NotAuthorized, T::Auth, text)
                                           : xmpp::StanzaError(C::NotAllowed, T::Cancel, text);
                break;
            case 404:
            case 410:
                e = xmpp::StanzaError(C::ItemNotFound, T::Cancel, text);
                break;
            case 429:
                e = xmpp::StanzaError(C::ResourceConstraint, T::Wait, text);
                break;
            default:
                e = xmpp::StanzaError(C::ServiceUnavailable, T::Wait, text);
        }
        return xmpp::makeErrorReply(iq, e);
    }

    void preAuth(const PreAuthRequest& req, const PreAuthReply& reply) {
        if (req.host != host) {
            return reply(xmpp::makeErrorReply(req.iq, xmpp::StanzaError(xmpp::StanzaCondition::NotAllowed,
                                                                        "phone registration is on " + host)));
        }
        if (req.iq.attr("type") == "get") {
            xmpp::Element result = xmpp::makeIqResult(req.iq);
            result.addChild(registrationForm());
            return reply(std::move(result));
        }
        const xmpp::Element* x = req.payload.findChild("x", kData);
        if (!x || x->attr("type") != "submit" || formValue(*x, "FORM_TYPE") != std::string(kFormType)) {
            return reply(xmpp::makeErrorReply(
                req.iq, xmpp::StanzaError(xmpp::StanzaCondition::BadRequest,
                                          "submit the registration form (XEP-0004, FORM_TYPE " +
                                              std::string(kFormType) + ")")));
        }
        xmpp::Element iq = req.iq;
        auto answer = [iq, reply](Outcome o) { reply(toStanza(iq, o)); };
        auto pin = formValue(*x, "pin");
        if (!pin || pin->empty()) {
            return requestPin(formValue(*x, "phone"), req.peerIp, answer);
        }
        verify(formValue(*x, "phone"), pin, formValue(*x, "device_key"),
               formValue(*x, "device_name").value_or(""), answer);
    }

    // Ends the account's sessions (only those that logged in with `keyId`,
    // when given) with <not-authorized/>: their credentials are gone.
    size_t endSessions(const std::string& jid, std::optional<std::string> keyId, const std::string& why) {
        auto bare = xmpp::Jid::parse(jid);
        if (!bare) {
            return 0;
        }
        size_t ended = 0;
        for (auto& r : router->resources(*bare)) {
            if (!keyId || r.session->credentialId() == *keyId) {
                r.session->closeWithError({xmpp::StreamCondition::NotAuthorized, why});
                ++ended;
            }
        }
        return ended;
    }

    std::optional<std::pair<std::string, std::string>> splitJid(const std::string& text) const {
        auto jid = xmpp::Jid::parse(text);
        if (!jid || jid->local().empty() || !jid->resource().empty() || jid->domain() != host) {
            return std::nullopt;
        }
        return std::make_pair(std::string(jid->local()), std::string(jid->domain()));
    }

    void addCommands(Registrations& regs) {
        auto self = shared_from_this();
        regs.commands.push_back(
            {"list_devices",
             {"JID"},
             "Lists the devices (keys) of a phone-registered account: id, name, created, last login",
             [self](const std::vector<std::string>& a, AdminReply reply) {
                 auto parts = self->splitJid(a[0]);
                 if (!parts) {
                     return reply(1, "JID must be an account of " + self->host + "\n");
                 }
                 self->pool->submit([parts, reply](storage::Connection& c) {
                     try {
                         std::string out;
                         for (const auto& k : storage::accounts::keys(c, parts->second, parts->first)) {
                             out += k.id + " name=\"" + k.name + "\" created=" + isoTime(k.createdAt) +
                                    " last_login=" + isoTime(k.lastUsed) + "\n";
                         }
                         reply(0, out);
                     } catch (const storage::Error& e) {
                         reply(1, std::string("storage error: ") + e.what() + "\n");
                     }
                 });
             }});
        regs.commands.push_back(
            {"revoke_device",
             {"JID", "DEVICE"},
             "Removes one device's key and ends the sessions that logged in with it",
             [self](const std::vector<std::string>& a, AdminReply reply) {
                 auto parts = self->splitJid(a[0]);
                 if (!parts) {
                     return reply(1, "JID must be an account of " + self->host + "\n");
                 }
                 std::string device = a[1];
                 std::string jid = a[0];
                 self->pool->submit([self, parts, device, jid, reply](storage::Connection& c) {
                     int64_t removed = 0;
                     try {
                         removed = storage::accounts::removeKeys(c, parts->second, parts->first, device);
                     } catch (const storage::Error& e) {
                         return reply(1, std::string("storage error: ") + e.what() + "\n");
                     }
                     if (removed == 0) {
                         return reply(1, "no device " + device + " for " + jid + "\n");
                     }
                     size_t ended = self->endSessions(jid, device, "this device was revoked");
                     spdlog::info("sms_register: device {} of {} revoked, {} sessions ended", device, jid,
                                  ended);
                     reply(0, "Device " + device + " of " + jid + " revoked (" + std::to_string(ended) +
                                  " sessions ended)\n");
                 });
             }});
        regs.commands.push_back({"sms_gateway_stats",
                                 {},
                                 "Text messages sent, failed (after retries) and retried by the SMS gateway",
                                 [self](const std::vector<std::string>&, AdminReply reply) {
                                     const auto& n = sms::gatewayCounters();
                                     reply(0, "gateway: " + std::string(self->gateway->name()) +
                                                  "\nsent: " + std::to_string(n.sent.load()) +
                                                  "\nfailed: " + std::to_string(n.failed.load()) +
                                                  "\nretried: " + std::to_string(n.retried.load()) + "\n");
                                 }});
        regs.commands.push_back(
            {"pending_pins",
             {},
             "Lists the numbers with a PIN outstanding (never the PIN): created, expires, "
             "wrong attempts",
             [self](const std::vector<std::string>&, AdminReply reply) {
                 self->pool->submit([self, reply](storage::Connection& c) {
                     try {
                         std::string out;
                         for (const auto& p : sms::pendingPins(c, self->host, now())) {
                             out += p.phone + " created=" + isoTime(p.createdAt) +
                                    " expires=" + isoTime(p.expiresAt) +
                                    " attempts=" + std::to_string(p.attempts) + "\n";
                         }
                         reply(0, out);
                     } catch (const storage::Error& e) {
                         reply(1, std::string("storage error: ") + e.what() + "\n");
                     }
                 });
             }});
    }
};

SmsRegisterModule::SmsRegisterModule() : impl_(std::make_shared<Impl>()) {}
SmsRegisterModule::~SmsRegisterModule() = default;

std::vector<OptionSpec> SmsRegisterModule::options() {
    using T = OptionSpec::Type;
    return {
        {"host", T::String, "", 0, 0, "the virtual host accounts are made on (default: the first of hosts)"},
        {"pin_length", T::Integer, "5", 4, 10, "digits of a PIN"},
        {"pin_lifetime", T::Integer, "300", 30, 86400, "seconds a PIN stays valid"},
        {"max_verify_attempts", T::Integer, "5", 1, 100, "wrong PINs before the PIN is void"},
        {"pins_per_number_per_hour", T::Integer, "3", 1, 1000, "PIN requests per number per hour"},
        {"pins_per_ip_per_hour", T::Integer, "10", 1, 100000, "PIN requests per source address per hour"},
        {"devices", T::String, "single", 0, 0,
         "single: a new device's key revokes the others and ends their sessions; multi: each device keeps "
         "its own"},
        {"jid_localpart", T::String, "digits", 0, 0, "digits: 4915112345678@host; e164: +4915112345678@host"},
        {"countries_allow", T::String, "", 0, 0, "comma-separated ISO country codes taken (empty: all)"},
        {"countries_deny", T::String, "", 0, 0, "comma-separated ISO country codes refused"},
        {"gateway", T::String, "log", 0, 0,
         "log (development only: the PIN goes to the server log), command (runs gateway_command PHONE "
         "TEXT) or http (POSTs gateway_body to gateway_url)"},
        {"gateway_command", T::String, "", 0, 0, "the program the command gateway runs"},
        {"gateway_url", T::String, "", 0, 0, "http gateway: the provider's address the POST goes to"},
        {"gateway_body", T::String, "To={phone}&Body={text}", 0, 0,
         "http gateway: the body; {phone} and {text} are replaced, escaped for the content type"},
        {"gateway_content_type", T::String, "application/x-www-form-urlencoded", 0, 0,
         "http gateway: application/x-www-form-urlencoded or application/json"},
        {"gateway_auth", T::String, "none", 0, 0, "http gateway: none, basic or bearer"},
        {"gateway_user", T::String, "", 0, 0,
         "http gateway: the basic-auth user (e.g. a Twilio account SID)"},
        {"gateway_password", T::String, "", 0, 0, "http gateway: the basic-auth password"},
        {"gateway_token", T::String, "", 0, 0, "http gateway: the bearer token"},
        {"gateway_retries", T::Integer, "2", 0, 10,
         "further attempts after a failed send, 1 s, 2 s, 4 s ... apart"},
        {"gateway_timeout", T::Integer, "10", 1, 300, "seconds one send may take"},
        {"gateway_max_concurrent", T::Integer, "8", 1, 1000,
         "text messages being sent at once; beyond, a request gets 503 at once"},
        {"message", T::String, "Your {host} code is {pin}", 0, 0,
         "the text sent; {pin} and {host} are replaced"},
        {"in_band", T::Boolean, "true", 0, 0,
         "the same flow over XMPP: XEP-0077 in-band registration with a data form, before authentication"},
    };
}

Registrations SmsRegisterModule::start(ModuleContext& ctx) {
    auto impl = impl_;
    impl->pool = &ctx.storage;
    impl->accounts = &ctx.accounts;
    impl->router = &ctx.router;
    const auto& o = ctx.options;
    impl->host = o.string("host").empty() ? ctx.server.hosts.at(0) : o.string("host");
    if (std::find(ctx.server.hosts.begin(), ctx.server.hosts.end(), impl->host) == ctx.server.hosts.end()) {
        throw std::invalid_argument("modules.sms_register.host: '" + impl->host + "' is not one of hosts");
    }
    impl->limits.pinLength = static_cast<int>(o.integer("pin_length"));
    impl->limits.pinLifetime = o.integer("pin_lifetime");
    impl->limits.maxAttempts = static_cast<int>(o.integer("max_verify_attempts"));
    impl->limits.perNumberPerHour = static_cast<int>(o.integer("pins_per_number_per_hour"));
    impl->limits.perIpPerHour = static_cast<int>(o.integer("pins_per_ip_per_hour"));
    const auto& devices = o.string("devices");
    if (devices != "single" && devices != "multi") {
        throw std::invalid_argument("modules.sms_register.devices: expected single or multi, not '" +
                                    devices + "'");
    }
    impl->multiDevice = devices == "multi";
    const auto& rule = o.string("jid_localpart");
    if (rule != "digits" && rule != "e164") {
        throw std::invalid_argument("modules.sms_register.jid_localpart: expected digits or e164, not '" +
                                    rule + "'");
    }
    impl->digitsOnly = rule == "digits";
    impl->allow = regionList(o.string("countries_allow"));
    impl->deny = regionList(o.string("countries_deny"));
    impl->messageTemplate = o.string("message");
    if (impl->messageTemplate.find("{pin}") == std::string::npos) {
        throw std::invalid_argument("modules.sms_register.message: the text must contain {pin}");
    }
    sms::GatewayConfig gw;
    gw.kind = o.string("gateway");
    gw.command = o.string("gateway_command");
    gw.retries = static_cast<int>(o.integer("gateway_retries"));
    gw.timeout = static_cast<int>(o.integer("gateway_timeout"));
    gw.maxConcurrent = static_cast<int>(o.integer("gateway_max_concurrent"));
    gw.url = o.string("gateway_url");
    gw.body = o.string("gateway_body");
    gw.contentType = o.string("gateway_content_type");
    gw.auth = o.string("gateway_auth");
    gw.user = o.string("gateway_user");
    gw.password = o.string("gateway_password");
    gw.token = o.string("gateway_token");
    try {
        impl->gateway = sms::makeGateway(gw);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("modules.sms_register: ") + e.what());
    }
    if (gw.kind == "log") {
        spdlog::warn(
            "sms_register: gateway 'log' writes PINs to the log and sends nothing: development only");
    }

    Registrations regs;
    for (const auto& m : sms::migrations()) {
        regs.migrations.push_back(m);
    }
    regs.httpRoutes.push_back({"POST", "/v1/register/pin", [impl](const HttpRequest& req, HttpReply reply) {
                                   impl->httpPin(req, reply);
                               }});
    regs.httpRoutes.push_back(
        {"POST", "/v1/register/verify",
         [impl](const HttpRequest& req, HttpReply reply) { impl->httpVerify(req, reply); }});
    if (o.boolean("in_band")) {
        regs.preAuthIqs.push_back(
            {std::string(Impl::kRegister), "<register xmlns='http://jabber.org/features/iq-register'/>",
             [impl](const PreAuthRequest& req, PreAuthReply reply) { impl->preAuth(req, reply); }});
    }
    regs.onHook(ctx.hooks.accountRemoved, Band::Default, "sms_register", [impl](const AccountEvent& a) {
        impl->pool->submit([a](storage::Connection& c) {
            try {
                sms::removePhoneAccount(c, a.host, a.username);
            } catch (const storage::Error& e) {
                spdlog::error("sms_register: forgetting the number of {}@{}: {}", a.username, a.host,
                              e.what());
            }
        });
    });
    impl->addCommands(regs);
    return regs;
}

}  // namespace xmppd::modules
