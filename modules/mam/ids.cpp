#include "modules/mam/ids.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace xmppd::mam {

IdGenerator::IdGenerator() : random_(std::random_device{}()) {}

int64_t IdGenerator::next(int64_t nowMs) {
    std::lock_guard lock(mutex_);
    int64_t fromClock = firstIdOfMillis(nowMs) | static_cast<int64_t>(random_() & 0xFFFFF);
    int64_t fromLast = last_ + 1 + static_cast<int64_t>(random_() & 0xFF);
    last_ = std::max(fromClock, fromLast);
    return last_;
}

int64_t firstIdOfMillis(int64_t ms) {
    if (ms <= 0) {
        return 0;
    }
    if (ms > kMaxIdMillis) {
        return INT64_MAX;
    }
    return ms << kSequenceBits;
}

std::string renderId(int64_t id) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(id));
    return buf;
}

std::optional<int64_t> parseId(std::string_view text) {
    if (text.size() != 16) {
        return std::nullopt;
    }
    uint64_t value = 0;
    for (char ch : text) {
        int digit;
        if (ch >= '0' && ch <= '9') {
            digit = ch - '0';
        } else if (ch >= 'a' && ch <= 'f') {
            digit = ch - 'a' + 10;
        } else {
            return std::nullopt;  // upper case is not what we render
        }
        value = value << 4 | static_cast<uint64_t>(digit);
    }
    if (value > static_cast<uint64_t>(INT64_MAX) || value == 0) {
        return std::nullopt;
    }
    return static_cast<int64_t>(value);
}

int64_t nowMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string formatStamp(int64_t ms) {
    int64_t seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    auto tt = static_cast<std::time_t>(seconds);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms - seconds * 1000));
    return buf;
}

namespace {

// Reads exactly n decimal digits at pos.
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) {
        return false;
    }
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        out = out * 10 + (s[i] - '0');
    }
    return true;
}

}  // namespace

std::optional<int64_t> parseStampMicros(std::string_view s) {
    int year, month, day, hour, minute, second;
    if (!digits(s, 0, 4, year) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, month) || s[7] != '-' ||
        !digits(s, 8, 2, day) || s[10] != 'T' || !digits(s, 11, 2, hour) || s[13] != ':' ||
        !digits(s, 14, 2, minute) || s[16] != ':' || !digits(s, 17, 2, second)) {
        return std::nullopt;
    }
    if (hour > 23 || minute > 59 || second > 60) {  // 60: a leap second
        return std::nullopt;
    }
    using namespace std::chrono;
    year_month_day date{std::chrono::year(year), std::chrono::month(static_cast<unsigned>(month)),
                        std::chrono::day(static_cast<unsigned>(day))};
    if (!date.ok()) {
        return std::nullopt;
    }
    size_t pos = 19;
    int64_t micros = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        size_t start = pos;
        int64_t scale = 100000;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (scale > 0) {  // digits beyond microseconds are truncated
                micros += (s[pos] - '0') * scale;
                scale /= 10;
            }
            ++pos;
        }
        if (pos == start) {
            return std::nullopt;
        }
    }
    int64_t offsetSeconds = 0;
    if (pos < s.size() && s[pos] == 'Z') {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        int oh, om;
        if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !digits(s, pos + 4, 2, om) || oh > 23 || om > 59) {
            return std::nullopt;
        }
        offsetSeconds = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
        pos += 6;
    } else {
        return std::nullopt;  // XEP-0082 requires the zone designator
    }
    if (pos != s.size()) {
        return std::nullopt;
    }
    int64_t days = sys_days(date).time_since_epoch().count();
    int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds;
    return seconds * 1000000 + micros;
}

}  // namespace xmppd::mam
