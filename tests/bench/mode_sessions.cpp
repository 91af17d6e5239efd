// Modes `idle` (memory per idle session), `login` (full logins per second)
// and `offline` (XEP-0160 storage and delivery rates).
#include <algorithm>
#include <charconv>
#include <cstdio>

#include "tests/bench/load.hpp"
#include "tests/bench/xml_scan.hpp"

namespace bench {

namespace {

struct ServerSample {
    CpuTimes cpu;
    long rssKb = 0;
};

ServerSample sampleServer(int pid) {
    ServerSample s;
    if (pid) {
        s.cpu = procCpu(pid).value_or(CpuTimes{});
        s.rssKb = procRssKb(pid).value_or(0);
    }
    return s;
}

}  // namespace

// ---- idle ----

int runIdle(Env& env) {
    const Options& o = env.opts;
    int w = o.warmupSessions;
    int n = o.sessions;
    if (o.users < w + n) {
        std::fprintf(stderr, "xmpp-load: idle needs --users >= --warmup-sessions + --sessions\n");
        return 1;
    }
    SessionSet set(env);
    for (int i = 0; i < w + n; ++i) {
        set.add(o.firstUser + i, true);
    }
    uint64_t lost = 0;
    set.onLostFn = [&](XmppConn& c, std::string_view why) {
        if (lost++ == 0) {
            std::fprintf(stderr, "xmpp-load: session lost: %s: %s\n", c.user().c_str(),
                         std::string(why).c_str());
        }
    };
    // Warm-up sessions stay connected: they are part of the baseline, so the
    // measured sessions are the marginal cost of one more.
    if (w > 0) {
        set.loginAll(0, static_cast<size_t>(w));
        env.runUntil({}, 2.0);
    }
    size_t warmReady = set.ready;
    ServerSample before = sampleServer(o.serverPid);
    std::fprintf(stderr, "xmpp-load: %zu warm-up sessions; logging in %d more\n", warmReady, n);
    double loginSeconds = set.loginAll(static_cast<size_t>(w), static_cast<size_t>(w + n));
    size_t ok = set.ready - warmReady;
    ServerSample loggedIn = sampleServer(o.serverPid);
    std::fprintf(stderr, "xmpp-load: %zu sessions ready in %.1fs; settling %.0fs\n", ok, loginSeconds,
                 o.settle);
    env.runUntil({}, o.settle);
    ServerSample after = sampleServer(o.serverPid);
    env.runUntil({}, std::max(0.0, o.duration - o.settle));

    ResultLine line("idle", o.label);
    line.add("tls", o.tls == TlsMode::None ? "none" : o.tls == TlsMode::Direct ? "direct" : "starttls");
    line.add("sessions", static_cast<int64_t>(ok)).add("warmup_sessions", static_cast<int64_t>(warmReady));
    line.add("login_failed", static_cast<int64_t>(set.failed)).add("disconnects", lost);
    line.add("login_s", loginSeconds).add("logins_per_s", static_cast<double>(ok) / loginSeconds);
    if (o.serverPid) {
        double perSession =
            ok ? static_cast<double>(after.rssKb - before.rssKb) * 1024.0 / static_cast<double>(ok) : 0;
        line.add("rss_before_kb", before.rssKb).add("rss_after_kb", after.rssKb);
        line.add("bytes_per_session", perSession).add("kib_per_session", perSession / 1024.0);
        line.add("server_cpu_login_s", loggedIn.cpu.total() - before.cpu.total());
    }
    uint64_t errors = set.failed + lost;
    line.add("errors", errors);
    env.print(line);
    set.logoutAll();
    return errors ? 1 : 0;
}

// ---- login ----

namespace {

class LoginDriver : public XmppEvents {
  public:
    explicit LoginDriver(Env& env) : env_(env) {}

    void run() {
        const Options& o = env_.opts;
        for (int i = 0; i < o.concurrency; ++i) {
            slots_.push_back(std::make_unique<XmppConn>(env_.loop, env_.tls, env_.settings, *this, i));
        }
        for (auto& s : slots_) {
            next(*s);
        }
        int64_t start = nowNs();
        int64_t measureStart = start + static_cast<int64_t>(o.warmup * 1e9);
        int64_t measureEnd = measureStart + static_cast<int64_t>(o.duration * 1e9);
        int64_t lastCheck = start;
        auto timeout = static_cast<int64_t>(o.loginTimeout * 1e9);
        env_.runUntil({}, nsToSec(measureEnd - start), [&](int64_t now) -> int64_t {
            if (!measuring_ && now >= measureStart) {
                measuring_ = true;
                before_ = sampleServer(o.serverPid);
                self0_ = selfCpu();
            }
            if (now - lastCheck >= 1000000000) {
                lastCheck = now;
                for (auto& s : slots_) {
                    if (s->busy() && now - s->loginStartedNs() > timeout) {
                        s->close();
                        onFailed(*s, std::string("login timed out in phase ") + s->phaseName());
                    }
                }
            }
            return 0;
        });
        measuring_ = false;
        running_ = false;
        after_ = sampleServer(o.serverPid);
        self1_ = selfCpu();
        for (auto& s : slots_) {
            s->logout();
        }
    }

    int report() {
        const Options& o = env_.opts;
        ResultLine line("login", o.label);
        line.add("mechanism", o.mechanism).add("concurrency", o.concurrency);
        line.add("logins", measured_).add("logins_per_s", static_cast<double>(measured_) / o.duration);
        line.add("p50_ms", percentile(latencyUs_, 50) / 1e3).add("p99_ms", percentile(latencyUs_, 99) / 1e3);
        line.add("gen_cpu_pct", 100.0 * (self1_.total() - self0_.total()) / o.duration);
        if (o.serverPid) {
            double cpu = after_.cpu.total() - before_.cpu.total();
            line.add("server_cpu_s", cpu).add("server_cpu_pct", 100.0 * cpu / o.duration);
            line.add("server_cpu_ms_per_login", measured_ ? 1e3 * cpu / static_cast<double>(measured_) : 0.0);
        }
        line.add("errors", failed_);
        env_.print(line);
        return failed_ ? 1 : 0;
    }

  private:
    void next(XmppConn& c) {
        const Options& o = env_.opts;
        std::string user =
            env_.userName(o.firstUser + static_cast<int>(nextUser_++ % static_cast<uint64_t>(o.users)));
        std::string password = env_.passwordFor(user);
        c.login(std::move(user), std::move(password), true, env_.sources.next());
    }
    void onReady(XmppConn& c) override {
        if (measuring_) {
            ++measured_;
            latencyUs_.push_back(static_cast<uint32_t>((nowNs() - c.loginStartedNs()) / 1000));
        }
        env_.loop.defer([this, &c] {
            c.logout();
            if (running_) {
                next(c);
            }
        });
    }
    void onStanza(XmppConn&, std::string_view) override {}
    void onFailed(XmppConn& c, std::string_view why) override {
        if (!running_) {
            return;
        }
        if (failed_++ == 0) {
            std::fprintf(stderr, "xmpp-load: login failed: %s: %s\n", c.user().c_str(),
                         std::string(why).c_str());
        }
        env_.loop.defer([this, &c] {
            if (running_) {
                next(c);
            }
        });
    }

    Env& env_;
    std::vector<std::unique_ptr<XmppConn>> slots_;
    uint64_t nextUser_ = 0;
    bool running_ = true;
    bool measuring_ = false;
    uint64_t measured_ = 0;
    uint64_t failed_ = 0;
    std::vector<uint32_t> latencyUs_;
    ServerSample before_, after_;
    CpuTimes self0_, self1_;
};

}  // namespace

int runLogin(Env& env) {
    LoginDriver driver(env);
    driver.run();
    return driver.report();
}

// ---- offline ----

int runOffline(Env& env) {
    const Options& o = env.opts;
    const int s = o.senders;
    const int r = o.recipients;
    if (o.users < s + r || s <= 0 || r <= 0) {
        std::fprintf(stderr, "xmpp-load: offline needs --users >= --senders + --recipients\n");
        return 1;
    }
    std::string run = runId();
    SessionSet senders(env);
    SessionSet recipients(env);
    for (int i = 0; i < s; ++i) {
        senders.add(o.firstUser + i, true);
    }
    for (int i = 0; i < r; ++i) {
        recipients.add(o.firstUser + s + i, false);
    }
    // Sender k sends messages j = 0, 1, ...; message (k, j) goes to recipient (j * s + k) % r.
    std::vector<uint32_t> quota(static_cast<size_t>(s)), nextSeq(static_cast<size_t>(s), 0);
    std::vector<int> pings(static_cast<size_t>(s), 0);
    // XEP-0198 per sender: 0 asked, 1 enabled, -1 refused; and the server's last 'h'.
    std::vector<int> sm(static_cast<size_t>(s), 0);
    std::vector<uint32_t> acked(static_cast<size_t>(s), 0);
    std::vector<int> requests(static_cast<size_t>(s), 0);  // <r/> without an <a/> yet
    std::vector<int64_t> lastAck(static_cast<size_t>(s), 0);
    bool useSm = false;
    std::vector<std::vector<uint8_t>> seen(static_cast<size_t>(s));
    for (int k = 0; k < s; ++k) {
        quota[static_cast<size_t>(k)] = static_cast<uint32_t>(o.messages / s + (k < o.messages % s ? 1 : 0));
        seen[static_cast<size_t>(k)].assign(quota[static_cast<size_t>(k)], 0);
    }
    int sendersDone = 0;
    uint64_t bounced = 0, foreign = 0, stale = 0, lostSessions = 0, unique = 0, duplicated = 0;
    std::string msg;
    auto sendBatch = [&](int k) {
        auto i = static_cast<size_t>(k);
        XmppConn& c = *senders.conns[i];
        for (int b = 0; b < o.batch && nextSeq[i] < quota[i]; ++b) {
            uint32_t j = nextSeq[i]++;
            int to = static_cast<int>((static_cast<int64_t>(j) * s + k) % r);
            msg = "<message type='chat' to='" + env.userName(o.firstUser + s + to) + "@" + o.domain +
                  "' id='o" + std::to_string(j) + "'><body>";
            appendLoadBody(msg, run, k, j, nowNs(), o.bodySize);
            msg += "</body></message>";
            c.send(msg);
        }
        if (useSm) {
            // The ack ('h') counts what the server has taken responsibility for.
            c.send("<r xmlns='urn:xmpp:sm:3'/>");
            ++requests[i];
            return;
        }
        // The answer to this ping says the server has handled the batch.
        c.send("<iq type='get' id='b' to='" + o.domain + "'><ping xmlns='urn:xmpp:ping'/></iq>");
        ++pings[i];
    };
    senders.onStanzaFn = [&](XmppConn& c, std::string_view stanza) {
        std::string_view name = tagName(stanza);
        auto i = static_cast<size_t>(c.index());
        if (name == "message" && attrValue(stanza, "type") == "error") {
            ++bounced;
        } else if (name == "enabled" || name == "failed") {
            sm[i] = name == "enabled" ? 1 : -1;
        } else if (name == "a" && useSm) {
            std::string_view h = attrValue(stanza, "h");
            uint32_t n = 0;
            std::from_chars(h.data(), h.data() + h.size(), n);
            bool wasDone = acked[i] >= quota[i];
            acked[i] = std::max(acked[i], n);
            requests[i] = std::max(0, requests[i] - 1);
            lastAck[i] = nowNs();
            // At most two batches unacknowledged.
            while (nextSeq[i] < quota[i] && nextSeq[i] - acked[i] < 2 * static_cast<uint32_t>(o.batch)) {
                sendBatch(c.index());
            }
            if (!wasDone && acked[i] >= quota[i]) {
                ++sendersDone;
            }
        } else if (name == "iq" && attrValue(stanza, "id") == "b") {
            --pings[i];
            if (nextSeq[i] < quota[i]) {
                sendBatch(c.index());
            } else if (pings[i] == 0) {
                ++sendersDone;
            }
        }
    };
    senders.onLostFn = recipients.onLostFn = [&](XmppConn& c, std::string_view why) {
        if (lostSessions++ == 0) {
            std::fprintf(stderr, "xmpp-load: session lost: %s: %s\n", c.user().c_str(),
                         std::string(why).c_str());
        }
    };
    int64_t lastDelivery = 0;
    recipients.onStanzaFn = [&](XmppConn&, std::string_view stanza) {
        if (tagName(stanza) != "message") {
            return;
        }
        int from = -1;
        uint32_t seq = 0;
        int64_t ts = 0;
        std::string_view why = parseLoadBody(childText(stanza, "body"), run, from, seq, ts);
        if (!why.empty() || from < 0 || from >= s || seq >= quota[static_cast<size_t>(from)]) {
            ++(why == "stale" ? stale : foreign);
            return;
        }
        uint8_t& mark = seen[static_cast<size_t>(from)][seq];
        ++(mark ? duplicated : unique);
        mark = 1;
        lastDelivery = nowNs();
    };

    senders.loginAll(0, static_cast<size_t>(s));
    std::fprintf(stderr, "xmpp-load: %zu senders ready; storing %d messages for %d offline users\n",
                 senders.ready, o.messages, r);
    // Stored means acknowledged: XEP-0198 acks where the server offers them
    // (all three servers answer them only once the message is stored), else pings.
    for (auto& c : senders.conns) {
        if (c->ready()) {
            c->enableStreamManagement();
        } else {
            sm[static_cast<size_t>(c->index())] = -1;
        }
    }
    env.runUntil([&] { return std::count(sm.begin(), sm.end(), 0) == 0; }, 10);
    useSm = std::count(sm.begin(), sm.end(), 1) == static_cast<int64_t>(senders.ready) && senders.ready > 0;
    ServerSample s0 = sampleServer(o.serverPid);
    int64_t t0 = nowNs();
    for (int k = 0; k < s; ++k) {
        if (senders.conns[static_cast<size_t>(k)]->ready()) {
            sendBatch(k);
            sendBatch(k);
        } else {
            ++sendersDone;
        }
    }
    // A server may answer an <r/> before it has stored what preceded it (with
    // the 'h' it had then) and send nothing more: ask again, every millisecond.
    auto reRequest = [&](int64_t now) -> int64_t {
        if (!useSm) {
            return 0;
        }
        for (size_t i = 0; i < static_cast<size_t>(s); ++i) {
            if (requests[i] == 0 && acked[i] < nextSeq[i] && now - lastAck[i] > 1000000 &&
                senders.conns[i]->ready()) {
                senders.conns[i]->send("<r xmlns='urn:xmpp:sm:3'/>");
                ++requests[i];
            }
        }
        return 0;
    };
    env.runUntil([&] { return sendersDone >= s; }, std::max(o.drain, 60.0), reRequest);
    int64_t t1 = nowNs();
    ServerSample s1 = sampleServer(o.serverPid);
    double storeSeconds = nsToSec(t1 - t0);

    ResultLine line("offline", o.label);
    line.add("messages", o.messages).add("senders", s).add("recipients", r).add("ack", useSm ? "sm" : "ping");
    bool supported = bounced == 0;
    double deliverSeconds = 0;
    ServerSample s2 = s1, s3 = s1;
    if (supported) {
        recipients.loginAll(0, static_cast<size_t>(r));
        std::fprintf(stderr, "xmpp-load: stored in %.2fs; %zu recipients logged in, sending presence\n",
                     storeSeconds, recipients.ready);
        s2 = sampleServer(o.serverPid);
        int64_t t2 = nowNs();
        lastDelivery = t2;
        for (auto& c : recipients.conns) {
            if (c->ready()) {
                c->sendPresence();
            }
        }
        auto total = static_cast<uint64_t>(o.messages);
        env.runUntil([&] { return unique >= total; }, o.drain);
        s3 = sampleServer(o.serverPid);
        deliverSeconds = nsToSec(lastDelivery - t2);
    }
    uint64_t lost = supported ? static_cast<uint64_t>(o.messages) - unique : 0;
    line.add("offline", supported ? "supported" : "unsupported");
    line.add("store_s", storeSeconds).add("stored_per_s", supported ? o.messages / storeSeconds : 0.0);
    line.add("deliver_s", deliverSeconds)
        .add("delivered_per_s",
             supported && deliverSeconds > 0 ? static_cast<double>(unique) / deliverSeconds : 0.0);
    line.add("delivered", unique).add("lost", lost).add("duplicated", duplicated).add("bounced", bounced);
    line.add("stale", stale).add("foreign", foreign).add("disconnects", lostSessions);
    if (o.serverPid) {
        line.add("server_cpu_store_s", s1.cpu.total() - s0.cpu.total());
        line.add("server_cpu_deliver_s", s3.cpu.total() - s2.cpu.total());
    }
    uint64_t errors = senders.failed + recipients.failed + lostSessions + foreign;
    line.add("errors", errors);
    env.print(line);
    senders.logoutAll();
    recipients.logoutAll();
    if (lost || duplicated) {
        return 2;
    }
    return errors ? 1 : 0;
}

}  // namespace bench
