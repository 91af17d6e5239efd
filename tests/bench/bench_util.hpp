// Small helpers shared by xmpp-load and raw-relay: clocks, CPU and memory of
// a process, file-descriptor limits, base64, percentiles and the RESULT line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// CLOCK_MONOTONIC in nanoseconds.
int64_t nowNs();
inline double nsToSec(int64_t ns) {
    return static_cast<double>(ns) / 1e9;
}

struct CpuTimes {
    double user = 0;
    double sys = 0;
    double total() const { return user + sys; }
};

// This process (getrusage).
CpuTimes selfCpu();
// Another process, all its threads (utime and stime of /proc/PID/stat).
std::optional<CpuTimes> procCpu(int pid);
// VmRSS of /proc/PID/status in KiB.
std::optional<long> procRssKb(int pid);

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft limit.
uint64_t raiseNofileLimit();

std::string randomBytes(size_t n);
std::string base64Encode(std::string_view bytes);
std::optional<std::string> base64Decode(std::string_view text);

// The p-th percentile (0..100) of the samples; sorts them in place.
double percentile(std::vector<uint32_t>& samples, double p);

// One machine-readable line: "RESULT mode=... server=... key=value ...".
class ResultLine {
  public:
    ResultLine(std::string_view mode, std::string_view server);
    ResultLine& add(std::string_view key, std::string_view value);
    ResultLine& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
    ResultLine& add(std::string_view key, int64_t value);
    ResultLine& add(std::string_view key, uint64_t value) { return add(key, static_cast<int64_t>(value)); }
    ResultLine& add(std::string_view key, int value) { return add(key, static_cast<int64_t>(value)); }
    ResultLine& add(std::string_view key, double value);
    const std::string& str() const { return line_; }

  private:
    std::string line_;
};

}  // namespace bench
