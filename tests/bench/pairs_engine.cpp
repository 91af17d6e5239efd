#include "tests/bench/pairs_engine.hpp"

#include <algorithm>
#include <cstdio>

namespace bench {

PairsEngine::PairsEngine(Config config, int endpoints, SendFn send)
    : cfg_(config),
      send_(std::move(send)),
      peer_(static_cast<size_t>(endpoints), -1),
      sent_(static_cast<size_t>(endpoints), 0),
      inFlight_(static_cast<size_t>(endpoints), 0),
      seen_(static_cast<size_t>(endpoints)) {}

void PairsEngine::pair(int a, int b) {
    peer_[static_cast<size_t>(a)] = b;
    peer_[static_cast<size_t>(b)] = a;
    senders_.push_back(a);
    senders_.push_back(b);
}

void PairsEngine::sendFrom(int e, int64_t ts) {
    auto i = static_cast<size_t>(e);
    uint32_t seq = sent_[i]++;
    seen_[i].push_back(0);
    ++inFlight_[i];
    ++totalInFlight_;
    ++totalSent_;
    send_(e, seq, ts);
}

void PairsEngine::start(int64_t now) {
    start_ = now;
    measureStart_ = now + static_cast<int64_t>(cfg_.warmup * 1e9);
    measureEnd_ = measureStart_ + static_cast<int64_t>(cfg_.duration * 1e9);
    drainEnd_ = measureEnd_ + static_cast<int64_t>(cfg_.drain * 1e9);
    sending_ = true;
    if (cfg_.rate <= 0) {
        for (int e : senders_) {
            for (int w = 0; w < cfg_.window; ++w) {
                sendFrom(e, now);
            }
        }
    }
}

int64_t PairsEngine::tick(int64_t now) {
    if (done_ || start_ == 0) {
        return 0;
    }
    if (!measuring_ && sending_ && now >= measureStart_) {
        measuring_ = true;
        selfCpu0_ = selfCpu();
        if (cfg_.serverPid) {
            serverCpu0_ = procCpu(cfg_.serverPid).value_or(CpuTimes{});
        }
    }
    if (sending_ && now >= measureEnd_) {
        sending_ = false;
        measuring_ = false;
        selfCpu1_ = selfCpu();
        if (cfg_.serverPid) {
            serverCpu1_ = procCpu(cfg_.serverPid).value_or(CpuTimes{});
            rss1_ = procRssKb(cfg_.serverPid).value_or(0);
        }
    }
    if (!sending_) {
        done_ = totalInFlight_ == 0 || now >= drainEnd_;
        return 0;
    }
    if (cfg_.rate > 0 && !senders_.empty()) {
        // Open loop: as many messages as the schedule says by now, round robin.
        auto due = static_cast<uint64_t>(nsToSec(now - start_) * cfg_.rate);
        while (totalSent_ < due) {
            auto scheduled = start_ + static_cast<int64_t>(static_cast<double>(totalSent_) * 1e9 / cfg_.rate);
            if (measuring_) {
                maxLagNs_ = std::max(maxLagNs_, now - scheduled);
            }
            int e = senders_[rr_++ % senders_.size()];
            sendFrom(e, scheduled);
        }
        return start_ + static_cast<int64_t>(static_cast<double>(totalSent_) * 1e9 / cfg_.rate);
    }
    return 0;
}

void PairsEngine::onReceive(int receiver, int sender, uint32_t seq, int64_t tsNs, int64_t now) {
    if (sender < 0 || static_cast<size_t>(sender) >= sent_.size() ||
        seq >= sent_[static_cast<size_t>(sender)]) {
        ++bogus_;
        return;
    }
    auto s = static_cast<size_t>(sender);
    if (peer_[s] != receiver) {
        ++misrouted_;
    }
    if (seen_[s][seq]) {
        ++duplicated_;
        return;
    }
    seen_[s][seq] = 1;
    ++unique_;
    --inFlight_[s];
    --totalInFlight_;
    if (measuring_ && now >= measureStart_) {
        ++measured_;
        latencyUs_.push_back(static_cast<uint32_t>(std::min<int64_t>((now - tsNs) / 1000, UINT32_MAX)));
    }
    if (sending_ && cfg_.rate <= 0 && peer_[s] >= 0) {
        sendFrom(sender, now);
    }
}

void PairsEngine::lose(int endpoint) {
    auto e = static_cast<size_t>(endpoint);
    if (peer_[e] >= 0) {
        senders_.erase(std::remove(senders_.begin(), senders_.end(), endpoint), senders_.end());
        peer_[e] = -1;
    }
}

bool PairsEngine::report(ResultLine& line) {
    uint64_t lost = totalSent_ - unique_;
    double msgsPerSec = static_cast<double>(measured_) / cfg_.duration;
    line.add("loop", cfg_.rate > 0 ? "open" : "closed");
    if (cfg_.rate > 0) {
        line.add("rate", cfg_.rate);
    } else {
        line.add("window", cfg_.window);
    }
    line.add("endpoints", static_cast<int64_t>(senders_.size()));
    line.add("msgs_per_s", msgsPerSec);
    line.add("measured", measured_).add("sent", totalSent_).add("received", unique_);
    line.add("lost", lost).add("duplicated", duplicated_).add("misrouted", misrouted_).add("bogus", bogus_);
    line.add("p50_us", percentile(latencyUs_, 50)).add("p90_us", percentile(latencyUs_, 90));
    line.add("p99_us", percentile(latencyUs_, 99)).add("p999_us", percentile(latencyUs_, 99.9));
    line.add("max_us", percentile(latencyUs_, 100));
    if (cfg_.rate > 0) {
        line.add("send_lag_max_us", static_cast<double>(maxLagNs_) / 1e3);
    }
    double genCpu = selfCpu1_.total() - selfCpu0_.total();
    line.add("gen_cpu_pct", 100.0 * genCpu / cfg_.duration);
    if (cfg_.serverPid) {
        double serverCpu = serverCpu1_.total() - serverCpu0_.total();
        line.add("server_cpu_s", serverCpu).add("server_cpu_pct", 100.0 * serverCpu / cfg_.duration);
        line.add("server_cpu_s_per_100k", measured_ ? serverCpu * 1e5 / static_cast<double>(measured_) : 0.0);
        line.add("server_rss_kb", rss1_);
    }
    return lost == 0 && duplicated_ == 0 && misrouted_ == 0 && bogus_ == 0;
}

}  // namespace bench
