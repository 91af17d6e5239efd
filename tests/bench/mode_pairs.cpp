// Modes `pairs` (XMPP messages between pairs of users) and `raw-pairs` (the
// same pattern as fixed-size frames through raw-relay, the cost floor).
#include <charconv>
#include <cstdio>
#include <cstring>

#include "tests/bench/load.hpp"
#include "tests/bench/pairs_engine.hpp"
#include "tests/bench/xml_scan.hpp"

namespace bench {

namespace {

PairsEngine::Config engineConfig(const Options& o) {
    PairsEngine::Config c;
    c.window = o.window;
    c.rate = o.rate;
    c.warmup = o.warmup;
    c.duration = o.duration;
    c.drain = o.drain;
    c.serverPid = o.serverPid;
    return c;
}

template <typename T>
bool takeNumber(std::string_view& s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || p == s.data()) {
        return false;
    }
    s.remove_prefix(static_cast<size_t>(p - s.data()));
    if (!s.empty() && s[0] == ' ') {
        s.remove_prefix(1);
    }
    return true;
}

}  // namespace

std::string runId() {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : randomBytes(4)) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

// The body of a load message: "xl RUN FROM SEQ TS xxxx...".
std::string_view parseLoadBody(std::string_view body, std::string_view run, int& from, uint32_t& seq,
                               int64_t& ts) {
    if (body.substr(0, 3) != "xl ") {
        return "foreign";
    }
    body.remove_prefix(3);
    if (body.substr(0, run.size()) != run) {
        return "stale";
    }
    body.remove_prefix(std::min(body.size(), run.size() + 1));
    if (!takeNumber(body, from) || !takeNumber(body, seq) || !takeNumber(body, ts)) {
        return "foreign";
    }
    return {};
}

void appendLoadBody(std::string& out, std::string_view run, int from, uint32_t seq, int64_t ts, int size) {
    size_t start = out.size();
    out += "xl ";
    out += run;
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, " %d %u %lld ", from, seq, static_cast<long long>(ts));
    out.append(buf, static_cast<size_t>(n));
    size_t used = out.size() - start;
    if (used < static_cast<size_t>(size)) {
        out.append(static_cast<size_t>(size) - used, 'x');
    }
}

int runPairs(Env& env) {
    const Options& o = env.opts;
    int n = 2 * o.pairs;
    if (o.users < n) {
        std::fprintf(stderr, "xmpp-load: pairs needs --users >= 2 x --pairs\n");
        return 1;
    }
    SessionSet set(env);
    for (int i = 0; i < n; ++i) {
        set.add(o.firstUser + i, true);
    }
    std::string run = runId();
    std::vector<std::string> prefix(static_cast<size_t>(n));
    std::string msg;
    PairsEngine engine(engineConfig(o), n, [&](int from, uint32_t seq, int64_t ts) {
        msg = prefix[static_cast<size_t>(from)];
        msg += std::to_string(seq);
        msg += "'><body>";
        appendLoadBody(msg, run, from, seq, ts, o.bodySize);
        msg += "</body></message>";
        set.conns[static_cast<size_t>(from)]->send(msg);
    });
    uint64_t bounced = 0, foreign = 0, lostSessions = 0;
    set.onStanzaFn = [&](XmppConn& c, std::string_view stanza) {
        if (tagName(stanza) != "message") {
            return;
        }
        if (attrValue(stanza, "type") == "error") {
            ++bounced;
            return;
        }
        int from = -1;
        uint32_t seq = 0;
        int64_t ts = 0;
        if (!parseLoadBody(childText(stanza, "body"), run, from, seq, ts).empty()) {
            ++foreign;
            return;
        }
        engine.onReceive(c.index(), from, seq, ts, nowNs());
    };
    set.onLostFn = [&](XmppConn& c, std::string_view why) {
        if (lostSessions++ == 0) {
            std::fprintf(stderr, "xmpp-load: session lost: %s: %s\n", c.user().c_str(),
                         std::string(why).c_str());
        }
        engine.lose(c.index());
    };
    std::fprintf(stderr, "xmpp-load: logging in %d sessions\n", n);
    double loginSeconds = set.loginAll(0, static_cast<size_t>(n));
    for (int i = 0; i < n; i += 2) {
        XmppConn& a = *set.conns[static_cast<size_t>(i)];
        XmppConn& b = *set.conns[static_cast<size_t>(i + 1)];
        if (!a.ready() || !b.ready()) {
            continue;
        }
        engine.pair(i, i + 1);
        prefix[static_cast<size_t>(i)] =
            "<message type='chat' to='" + (o.toFullJid ? b.fullJid() : b.bareJid()) + "' id='m";
        prefix[static_cast<size_t>(i + 1)] =
            "<message type='chat' to='" + (o.toFullJid ? a.fullJid() : a.bareJid()) + "' id='m";
    }
    std::fprintf(stderr, "xmpp-load: %zu sessions ready in %.1fs, sending\n", set.ready, loginSeconds);
    engine.start(nowNs());
    env.runUntil([&] { return engine.done(); }, 1e9, [&](int64_t now) { return engine.tick(now); });

    ResultLine line("pairs", o.label);
    line.add("pairs", o.pairs).add("sessions", static_cast<int64_t>(set.ready));
    line.add("login_failed", static_cast<int64_t>(set.failed)).add("login_s", loginSeconds);
    line.add("to", o.toFullJid ? "full" : "bare").add("body_bytes", o.bodySize);
    bool correct = engine.report(line);
    uint64_t errors = set.failed + bounced + foreign + lostSessions;
    line.add("bounced", bounced).add("foreign", foreign).add("disconnects", lostSessions);
    line.add("errors", errors).add("correct", correct ? 1 : 0);
    env.print(line);
    set.logoutAll();
    return !correct ? 2 : errors ? 1 : 0;
}

// ---- raw-pairs ----

namespace {

constexpr uint32_t kHello = 0xffffffffu;
constexpr size_t kFrameHeader = 20;

class RawConn : public Conn {
  public:
    struct Events {
        std::function<void(RawConn&, int peer)> hello;
        std::function<void(RawConn&, int from, uint32_t seq, int64_t ts)> frame;
        std::function<void(RawConn&, std::string_view)> lost;
    };
    RawConn(Loop& loop, int index, size_t frameSize, Events& events)
        : Conn(loop, nullptr), index_(index), frameSize_(frameSize), events_(events) {}

    int index() const { return index_; }
    void sendFrame(uint32_t seq, int64_t ts) {
        std::string f(frameSize_, 'x');
        std::memcpy(f.data(), "XLRF", 4);
        auto from = static_cast<uint32_t>(index_);
        std::memcpy(f.data() + 4, &from, 4);
        std::memcpy(f.data() + 8, &seq, 4);
        std::memcpy(f.data() + 12, &ts, 8);
        send(f);
    }

  private:
    void onConnected() override { sendFrame(kHello, 0); }
    void onTlsReady() override {}
    void onBytes(std::string_view bytes) override {
        in_.append(bytes);
        size_t pos = 0;
        while (in_.size() - pos >= frameSize_) {
            const char* f = in_.data() + pos;
            uint32_t from = 0, seq = 0;
            int64_t ts = 0;
            std::memcpy(&from, f + 4, 4);
            std::memcpy(&seq, f + 8, 4);
            std::memcpy(&ts, f + 12, 8);
            pos += frameSize_;
            if (seq == kHello) {
                events_.hello(*this, static_cast<int>(from));
            } else {
                events_.frame(*this, static_cast<int>(from), seq, ts);
            }
        }
        in_.erase(0, pos);
    }
    void onDisconnect(std::string_view why) override { events_.lost(*this, why); }

    int index_;
    size_t frameSize_;
    Events& events_;
    std::string in_;
};

}  // namespace

int runRawPairs(Env& env) {
    const Options& o = env.opts;
    int n = 2 * o.pairs;
    auto frameSize = static_cast<size_t>(std::max<int>(o.frameSize, kFrameHeader));
    RawConn::Events events;
    std::vector<std::unique_ptr<RawConn>> conns;
    std::vector<int> peerOf(static_cast<size_t>(n), -1);
    PairsEngine engine(engineConfig(o), n, [&](int from, uint32_t seq, int64_t ts) {
        conns[static_cast<size_t>(from)]->sendFrame(seq, ts);
    });
    int hellos = 0;
    uint64_t lost = 0;
    events.hello = [&](RawConn& c, int peer) {
        peerOf[static_cast<size_t>(c.index())] = peer;
        ++hellos;
    };
    events.frame = [&](RawConn& c, int from, uint32_t seq, int64_t ts) {
        engine.onReceive(c.index(), from, seq, ts, nowNs());
    };
    events.lost = [&](RawConn& c, std::string_view why) {
        if (lost++ == 0) {
            std::fprintf(stderr, "xmpp-load: connection %d lost: %s\n", c.index(), std::string(why).c_str());
        }
        engine.lose(c.index());
    };
    // The relay pairs connections in the order it accepts them; each side
    // learns its peer from the peer's hello frame.
    for (int i = 0; i < n; ++i) {
        conns.push_back(std::make_unique<RawConn>(env.loop, i, frameSize, events));
        conns.back()->connectTo(env.settings.server, env.sources.next());
    }
    env.runUntil([&] { return hellos + static_cast<int>(lost) >= n; }, o.loginTimeout);
    int paired = 0;
    for (int i = 0; i < n; ++i) {
        int p = peerOf[static_cast<size_t>(i)];
        if (p > i && peerOf[static_cast<size_t>(p)] == i) {
            engine.pair(i, p);
            paired += 2;
        }
    }
    engine.start(nowNs());
    env.runUntil([&] { return engine.done(); }, 1e9, [&](int64_t now) { return engine.tick(now); });

    ResultLine line("raw-pairs", o.label);
    line.add("pairs", o.pairs).add("connected", paired).add("frame_bytes", static_cast<int64_t>(frameSize));
    bool correct = engine.report(line);
    uint64_t errors = static_cast<uint64_t>(n - paired) + lost;
    line.add("disconnects", lost).add("errors", errors).add("correct", correct ? 1 : 0);
    env.print(line);
    for (auto& c : conns) {
        c->close();
    }
    return !correct ? 2 : errors ? 1 : 0;
}

}  // namespace bench
