#include "tests/bench/bench_util.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bench {

int64_t nowNs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

CpuTimes selfCpu() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    CpuTimes t;
    t.user = static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    t.sys = static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6;
    return t;
}

std::optional<CpuTimes> procCpu(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!in || !std::getline(in, text)) {
        return std::nullopt;
    }
    // The command name (field 2) may contain spaces: fields resume after the last ')'.
    auto close = text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    // After ')': field 3 (state) is index 0; utime is field 14, stime field 15.
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    for (int i = 0; i <= 12 && fields >> field; ++i) {
        if (i == 11) {
            utime = std::stoull(field);
        } else if (i == 12) {
            stime = std::stoull(field);
        }
    }
    double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
    return CpuTimes{static_cast<double>(utime) / tick, static_cast<double>(stime) / tick};
}

std::optional<long> procRssKb(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return std::nullopt;
}

uint64_t raiseNofileLimit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return 0;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur;
}

std::string randomBytes(size_t n) {
    std::string out(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return out;
}

std::string base64Encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

std::optional<std::string> base64Decode(std::string_view text) {
    if (text.size() % 4 != 0) {
        return std::nullopt;
    }
    std::string out(3 * text.size() / 4 + 1, '\0');
    int n =
        EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
    if (n < 0) {
        return std::nullopt;
    }
    // EVP_DecodeBlock counts the padding as zero bytes.
    size_t len = static_cast<size_t>(n);
    for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) {
        --len;
    }
    out.resize(len);
    return out;
}

double percentile(std::vector<uint32_t>& samples, double p) {
    if (samples.empty()) {
        return 0;
    }
    // Nearest rank: the smallest sample with at least p% of samples at or below it.
    auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    rank = std::clamp<size_t>(rank, 1, samples.size()) - 1;
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(rank), samples.end());
    return samples[rank];
}

ResultLine::ResultLine(std::string_view mode, std::string_view server) {
    line_ = "RESULT";
    add("mode", mode);
    add("server", server);
}

ResultLine& ResultLine::add(std::string_view key, std::string_view value) {
    line_.append(" ").append(key).append("=");
    for (char c : value) {
        line_ += (c == ' ' || c == '\n' || c == '\t') ? '_' : c;
    }
    return *this;
}

ResultLine& ResultLine::add(std::string_view key, int64_t value) {
    return add(key, std::string_view(std::to_string(value)));
}

ResultLine& ResultLine::add(std::string_view key, double value) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", value);
    return add(key, std::string_view(buf));
}

}  // namespace bench
