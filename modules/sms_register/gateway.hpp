#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
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
    std::string kind = "log";  // log | command
    std::string command;       // command: the program, run as `command PHONE TEXT`
    int retries = 2;           // further attempts after a failure, 1 s, 2 s, 4 s ... apart
    int timeout = 10;          // seconds one attempt of the command may take
    int maxConcurrent = 8;     // sends under way at once; beyond, a send fails at once
};

// Development only: writes the text, PIN included, to the server log.
std::unique_ptr<SmsGateway> makeLogGateway();
// Runs a program (a modem tool, a provider's CLI) with the number and the
// text as its two arguments; exit status 0 is success.
std::unique_ptr<SmsGateway> makeCommandGateway(const GatewayConfig& config);
// Throws std::invalid_argument for an unknown kind or a missing command.
std::unique_ptr<SmsGateway> makeGateway(const GatewayConfig& config);

// Counters for `xmppctl stats`-like reporting (sent, failed after retries, retried).
struct GatewayCounters {
    std::atomic<uint64_t> sent{0};
    std::atomic<uint64_t> failed{0};
    std::atomic<uint64_t> retried{0};
};
GatewayCounters& gatewayCounters();

}  // namespace xmppd::sms
