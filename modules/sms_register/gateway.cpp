#include "modules/sms_register/gateway.hpp"

#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace xmppd::sms {

GatewayCounters& gatewayCounters() {
    static GatewayCounters counters;
    return counters;
}

namespace {

class LogGateway final : public SmsGateway {
  public:
    std::string_view name() const override { return "log"; }
    void send(std::string phone, std::string text, std::function<void(std::string)> done) override {
        spdlog::warn("sms_register: gateway 'log' (development only, nothing is sent): to {}: {}", phone,
                     text);
        ++gatewayCounters().sent;
        done({});
    }
};

// One attempt: spawns the program and waits for it, at most `timeout` seconds.
std::string runOnce(const std::string& program, const std::string& phone, const std::string& text,
                    int timeout) {
    std::vector<char*> argv{const_cast<char*>(program.c_str()), const_cast<char*>(phone.c_str()),
                            const_cast<char*>(text.c_str()), nullptr};
    pid_t pid = 0;
    if (int err = posix_spawnp(&pid, program.c_str(), nullptr, nullptr, argv.data(), environ); err != 0) {
        return "cannot run " + program + ": " + std::strerror(err);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
    int status = 0;
    while (true) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            break;
        }
        if (r < 0 && errno != EINTR) {
            return std::string("waiting for the command: ") + std::strerror(errno);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return program + " did not finish within " + std::to_string(timeout) + " s";
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        return {};
    }
    if (WIFEXITED(status)) {
        return program + " exited with status " + std::to_string(WEXITSTATUS(status));
    }
    return program + " ended by signal " + std::to_string(WTERMSIG(status));
}

class CommandGateway final : public SmsGateway {
  public:
    explicit CommandGateway(GatewayConfig config) : config_(std::move(config)) {}
    std::string_view name() const override { return "command"; }

    // Each send has a thread of its own (bounded by maxConcurrent): it waits
    // for a child process and sleeps between retries, which no I/O or
    // storage thread may do.
    void send(std::string phone, std::string text, std::function<void(std::string)> done) override {
        if (running_->fetch_add(1) >= config_.maxConcurrent) {
            --*running_;
            ++gatewayCounters().failed;
            done("too many text messages being sent at once");
            return;
        }
        std::thread([config = config_, running = running_, phone = std::move(phone), text = std::move(text),
                     done = std::move(done)] {
            std::string error;
            for (int attempt = 0; attempt <= config.retries; ++attempt) {
                if (attempt > 0) {
                    ++gatewayCounters().retried;
                    std::this_thread::sleep_for(std::chrono::seconds(1 << (attempt - 1)));
                }
                error = runOnce(config.command, phone, text, config.timeout);
                if (error.empty()) {
                    break;
                }
                spdlog::warn("sms_register: sending to {} failed (attempt {} of {}): {}", phone, attempt + 1,
                             config.retries + 1, error);
            }
            ++(error.empty() ? gatewayCounters().sent : gatewayCounters().failed);
            --*running;
            done(error);
        }).detach();
    }

  private:
    GatewayConfig config_;
    std::shared_ptr<std::atomic<int>> running_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace

std::unique_ptr<SmsGateway> makeLogGateway() {
    return std::make_unique<LogGateway>();
}

std::unique_ptr<SmsGateway> makeCommandGateway(const GatewayConfig& config) {
    return std::make_unique<CommandGateway>(config);
}

std::unique_ptr<SmsGateway> makeGateway(const GatewayConfig& config) {
    if (config.kind == "log") {
        return makeLogGateway();
    }
    if (config.kind == "command") {
        if (config.command.empty()) {
            throw std::invalid_argument("gateway 'command' needs gateway_command, the program to run");
        }
        return makeCommandGateway(config);
    }
    throw std::invalid_argument("unknown gateway '" + config.kind + "' (expected log or command)");
}

}  // namespace xmppd::sms
