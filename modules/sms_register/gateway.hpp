#pragma once

#include <atomic>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace xmppd::sms {

// Sends one text message. send() never blocks its caller; `done` runs once,
// on some other thread, with an empty string on success or what went wrong.
class SmsGateway {
  public:
    virtual ~SmsGateway() = default;
    virtual std::string_view name() const = 0;
    virtual void send(std::string phone, std::string text, std::function<void(std::string error)> done) = 0;
};

struct GatewayConfig {
    std::string kind = "log";  // log | command | http
    std::string command;       // command: the program, run as `command PHONE TEXT`
    // http: a POST to url with body (its {phone} and {text} replaced, escaped
    // for the content type: form-urlencoded or JSON), auth none|basic|bearer.
    std::string url;
    std::string body = "To={phone}&Body={text}";
    std::string contentType = "application/x-www-form-urlencoded";
    std::string auth = "none";
    std::string user;       // basic
    std::string password;   // basic
    std::string token;      // bearer
    int retries = 2;        // further attempts after a failure, 1 s, 2 s, 4 s ... apart
    int timeout = 10;       // seconds one attempt of the command may take
    int maxConcurrent = 8;  // sends under way at once; beyond, a send fails at once
};

// Development only: writes the text, PIN included, to the server log.
std::unique_ptr<SmsGateway> makeLogGateway();
// Runs a program (a modem tool, a provider's CLI) with the number and the
// text as its two arguments; exit status 0 is success.
std::unique_ptr<SmsGateway> makeCommandGateway(const GatewayConfig& config);
// POSTs to an SMS provider's HTTPS API (Twilio-style form or a JSON body);
// any 2xx status is success.
std::unique_ptr<SmsGateway> makeHttpGateway(const GatewayConfig& config);
// Replaces every occurrence of each key in `text` with its value, key by key
// in the order given (a value is not searched for its own key again).
std::string fillTemplate(std::string text,
                         std::initializer_list<std::pair<std::string_view, std::string>> values);
// Fills a body template for a content type; exposed for tests.
std::string fillBody(const GatewayConfig& config, const std::string& phone, const std::string& text);
// Throws std::invalid_argument for an unknown kind or a missing command or url.
std::unique_ptr<SmsGateway> makeGateway(const GatewayConfig& config);

// Counters for `xmppctl stats`-like reporting (sent, failed after retries, retried).
struct GatewayCounters {
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> failed{0};
    std::atomic<uint64_t> retried{0};
};
GatewayCounters& gatewayCounters();

}  // namespace xmppd::sms
