#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace xmppd {

// A token bucket over received bytes (what ejabberd calls a shaper and
// Prosody a rate limit): a peer may send `bytesPerSecond` on average and a
// burst of one second's worth; past that, the caller stops reading for the
// returned time, and TCP flow control holds the sender to the rate. Touched
// by one thread only.
class Shaper {
  public:
    using Clock = std::chrono::steady_clock;

    // 0 bytes per second: no limit (consume() never asks for a pause).
    explicit Shaper(size_t bytesPerSecond = 0, Clock::time_point now = Clock::now())
        : rate_(static_cast<double>(bytesPerSecond)), tokens_(rate_), last_(now) {}

    bool limited() const { return rate_ > 0; }

    // Accounts `bytes` received at `now`; returns how long to stop reading so
    // that the average stays at the rate (zero while within it).
    std::chrono::milliseconds consume(size_t bytes, Clock::time_point now) {
        if (!limited()) {
            return std::chrono::milliseconds(0);
        }
        if (now > last_) {
            double elapsed = std::chrono::duration<double>(now - last_).count();
            tokens_ = std::min(rate_, tokens_ + elapsed * rate_);
            last_ = now;
        }
        tokens_ -= static_cast<double>(bytes);
        if (tokens_ >= 0) {
            return std::chrono::milliseconds(0);
        }
        // Round up: a pause that ends early would let the peer run ahead.
        auto ms = static_cast<long long>(-tokens_ * 1000.0 / rate_) + 1;
        return std::chrono::milliseconds(ms);
    }

  private:
    double rate_;
    double tokens_;
    Clock::time_point last_;
};

}  // namespace xmppd
