#include "modules/sms_register/gateway.hpp"

#include <curl/curl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
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

// Sends on a thread of its own per message (bounded by maxConcurrent): an
// attempt waits for a child process or a provider's answer and retries sleep,
// which no I/O or storage thread may do.
class ThreadedGateway : public SmsGateway {
  public:
    explicit ThreadedGateway(GatewayConfig config) : config_(std::move(config)) {}

    void send(std::string phone, std::string text, std::function<void(std::string)> done) override {
        if (running_->fetch_add(1) >= config_.maxConcurrent) {
            --*running_;
            ++gatewayCounters().failed;
            done("too many text messages being sent at once");
            return;
        }
        // The gateway object may go before the thread ends (a module stop):
        // the thread holds what it needs by value.
        std::thread([attempt = attemptFn(), retries = config_.retries, running = running_,
                     phone = std::move(phone), text = std::move(text), done = std::move(done)] {
            std::string error;
            for (int n = 0; n <= retries; ++n) {
                if (n > 0) {
                    ++gatewayCounters().retried;
                    std::this_thread::sleep_for(std::chrono::seconds(1 << (n - 1)));
                }
                error = attempt(phone, text);
                if (error.empty()) {
                    break;
                }
                spdlog::warn("sms_register: sending to {} failed (attempt {} of {}): {}", phone, n + 1,
                             retries + 1, error);
            }
            ++(error.empty() ? gatewayCounters().sent : gatewayCounters().failed);
            --*running;
            done(error);
        }).detach();
    }

  protected:
    using Attempt = std::function<std::string(const std::string& phone, const std::string& text)>;
    virtual Attempt attemptFn() const = 0;
    GatewayConfig config_;

  private:
    std::shared_ptr<std::atomic<int>> running_ = std::make_shared<std::atomic<int>>(0);
};

class CommandGateway final : public ThreadedGateway {
  public:
    using ThreadedGateway::ThreadedGateway;
    std::string_view name() const override { return "command"; }

  protected:
    Attempt attemptFn() const override {
        return [program = config_.command, timeout = config_.timeout](const std::string& phone,
                                                                      const std::string& text) {
            return runOnce(program, phone, text, timeout);
        };
    }
};

std::string jsonEscape(const std::string& in) {
    std::string out;
    for (unsigned char c : in) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
    }
    return out;
}

std::string formEscape(const std::string& in) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : in) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

// Keeps the start of the provider's answer, for the log when it refused.
size_t keepBodyStart(char* data, size_t size, size_t count, void* userdata) {
    auto* kept = static_cast<std::string*>(userdata);
    size_t n = size * count;
    if (kept->size() < 300) {
        kept->append(data, std::min(n, 300 - kept->size()));
    }
    return n;
}

class HttpGateway final : public ThreadedGateway {
  public:
    using ThreadedGateway::ThreadedGateway;
    std::string_view name() const override { return "http"; }

  protected:
    Attempt attemptFn() const override {
        return [config = config_](const std::string& phone, const std::string& text) -> std::string {
            std::string body = fillBody(config, phone, text);
            CURL* curl = curl_easy_init();
            if (!curl) {
                return "cannot start an HTTP request";
            }
            curl_slist* headers = nullptr;
            headers = curl_slist_append(headers, ("Content-Type: " + config.contentType).c_str());
            if (config.auth == "bearer") {
                headers = curl_slist_append(headers, ("Authorization: Bearer " + config.token).c_str());
            }
            std::string answer;
            curl_easy_setopt(curl, CURLOPT_URL, config.url.c_str());
            curl_easy_setopt(curl, CURLOPT_POST, 1L);
            curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
            curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
            curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
            curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(config.timeout));
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keepBodyStart);
            curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
            curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
            if (config.auth == "basic") {
                curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
                curl_easy_setopt(curl, CURLOPT_USERNAME, config.user.c_str());
                curl_easy_setopt(curl, CURLOPT_PASSWORD, config.password.c_str());
            }
            CURLcode rc = curl_easy_perform(curl);
            long status = 0;
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
            curl_slist_free_all(headers);
            curl_easy_cleanup(curl);
            if (rc != CURLE_OK) {
                return std::string("POST ") + config.url + ": " + curl_easy_strerror(rc);
            }
            if (status < 200 || status > 299) {
                return "POST " + config.url + " answered " + std::to_string(status) + ": " + answer;
            }
            return {};
        };
    }
};

}  // namespace

std::unique_ptr<SmsGateway> makeLogGateway() {
    return std::make_unique<LogGateway>();
}

std::unique_ptr<SmsGateway> makeCommandGateway(const GatewayConfig& config) {
    return std::make_unique<CommandGateway>(config);
}

std::string fillTemplate(std::string text,
                         std::initializer_list<std::pair<std::string_view, std::string>> values) {
    for (const auto& [key, value] : values) {
        for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
            text.replace(at, key.size(), value);
        }
    }
    return text;
}

std::string fillBody(const GatewayConfig& config, const std::string& phone, const std::string& text) {
    bool json = config.contentType.find("json") != std::string::npos;
    auto escape = [json](const std::string& v) { return json ? jsonEscape(v) : formEscape(v); };
    return fillTemplate(config.body, {{"{phone}", escape(phone)}, {"{text}", escape(text)}});
}

std::unique_ptr<SmsGateway> makeHttpGateway(const GatewayConfig& config) {
    static const bool ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    if (!ready) {
        throw std::invalid_argument("libcurl could not be initialised");
    }
    return std::make_unique<HttpGateway>(config);
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
    if (config.kind == "http") {
        if (config.url.rfind("https://", 0) != 0 && config.url.rfind("http://", 0) != 0) {
            throw std::invalid_argument("gateway 'http' needs gateway_url, an https:// (or http://) address");
        }
        if (config.auth != "none" && config.auth != "basic" && config.auth != "bearer") {
            throw std::invalid_argument("gateway_auth: expected none, basic or bearer");
        }
        return makeHttpGateway(config);
    }
    throw std::invalid_argument("unknown gateway '" + config.kind + "' (expected log, command or http)");
}

}  // namespace xmppd::sms
