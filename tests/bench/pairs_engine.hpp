// The message pattern of `pairs` and `raw-pairs`, independent of the
// transport: endpoints in pairs send to each other, either closed loop (each
// sender keeps W messages in flight) or open loop (a fixed total rate, with
// send timestamps on the schedule so that a stalled server cannot hide its
// queueing delay). It checks that every message arrives exactly once.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "tests/bench/bench_util.hpp"

namespace bench {

class PairsEngine {
  public:
    struct Config {
        int window = 4;
        double rate = 0;  // 0 = closed loop
        double warmup = 3;
        double duration = 10;
        double drain = 10;
        int serverPid = 0;
    };
    // Sends message `seq` of endpoint `from` to its peer, stamped `tsNs`.
    using SendFn = std::function<void(int from, uint32_t seq, int64_t tsNs)>;

    PairsEngine(Config config, int endpoints, SendFn send);

    void pair(int a, int b);
    void start(int64_t now);
    // Paces the open loop and moves through warm-up, measurement and drain;
    // returns when the next message is due (0 = no schedule).
    int64_t tick(int64_t now);
    void onReceive(int receiver, int sender, uint32_t seq, int64_t tsNs, int64_t now);
    // An endpoint went away: it stops sending.
    void lose(int endpoint);
    bool done() const { return done_; }
    // Adds the figures to the line; returns false when a message was lost,
    // duplicated or misrouted.
    bool report(ResultLine& line);

  private:
    void sendFrom(int e, int64_t ts);

    Config cfg_;
    SendFn send_;
    std::vector<int> peer_;
    std::vector<uint32_t> sent_;
    std::vector<uint32_t> inFlight_;
    std::vector<std::vector<uint8_t>> seen_;
    std::vector<int> senders_;
    std::vector<uint32_t> latencyUs_;
    int64_t start_ = 0;
    int64_t measureStart_ = 0;
    int64_t measureEnd_ = 0;
    int64_t drainEnd_ = 0;
    bool measuring_ = false;
    bool sending_ = false;
    bool done_ = false;
    uint64_t totalSent_ = 0;
    uint64_t totalInFlight_ = 0;
    uint64_t unique_ = 0;
    uint64_t duplicated_ = 0;
    uint64_t misrouted_ = 0;
    uint64_t bogus_ = 0;
    uint64_t measured_ = 0;
    size_t rr_ = 0;
    int64_t maxLagNs_ = 0;
    CpuTimes serverCpu0_, serverCpu1_, selfCpu0_, selfCpu1_;
    long rss1_ = 0;
};

}  // namespace bench
