#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "tests/bench/load.hpp"

namespace bench {

Env::Env(const Options& o)
    : opts(o), tls(makeClientTlsContext()), sources(o.sources), nofile(raiseNofileLimit()) {
    if (o.releaseBuffers) {
        SSL_CTX_set_mode(tls, SSL_MODE_RELEASE_BUFFERS);
    }
    settings.server.sin_family = AF_INET;
    settings.server.sin_port = htons(static_cast<uint16_t>(o.port));
    if (inet_pton(AF_INET, o.host.c_str(), &settings.server.sin_addr) != 1) {
        throw std::runtime_error("--host must be an IPv4 address: " + o.host);
    }
    // Extra source addresses only make sense towards a loopback server.
    if ((ntohl(settings.server.sin_addr.s_addr) >> 24) != 127) {
        sources = SourceAddresses(0);
    }
    settings.domain = o.domain;
    settings.tls = o.tls;
    settings.mechanism = o.mechanism;
}

Env::~Env() {
    SSL_CTX_free(tls);
}

std::string Env::userName(int number) const {
    return opts.userPrefix + std::to_string(number);
}

std::string Env::passwordFor(const std::string& user) const {
    std::string p = opts.password;
    for (size_t pos; (pos = p.find("%u")) != std::string::npos;) {
        p.replace(pos, 2, user);
    }
    return p;
}

void Env::runUntil(const std::function<bool()>& done, double seconds,
                   const std::function<int64_t(int64_t)>& tick) {
    constexpr int64_t kMaxWait = 1000000;
    int64_t end = nowNs() + static_cast<int64_t>(seconds * 1e9);
    while (true) {
        int64_t now = nowNs();
        int64_t wake = tick ? tick(now) : 0;
        loop.flushDirty();
        if ((done && done()) || now >= end) {
            return;
        }
        int64_t wait = wake > now ? std::min(wake - now, kMaxWait) : kMaxWait;
        loop.runOnce(opts.busyPoll ? 0 : std::min(wait, end - now));
    }
}

void Env::print(ResultLine& line) const {
    CpuTimes cpu = selfCpu();
    line.add("cpu_user_s", cpu.user).add("cpu_sys_s", cpu.sys).add("nofile", nofile);
    std::printf("%s\n", line.str().c_str());
    std::fflush(stdout);
}

// ---- SessionSet ----

int SessionSet::add(int userNumber, bool presence) {
    int index = static_cast<int>(conns.size());
    conns.push_back(std::make_unique<XmppConn>(env_.loop, env_.tls, env_.settings, *this, index));
    userOf_.push_back(userNumber);
    presenceOf_.push_back(presence);
    loggingIn_.push_back(0);
    return index;
}

double SessionSet::loginAll(size_t from, size_t to) {
    int64_t start = nowNs();
    next_ = from;
    end_ = to;
    size_t target = ready + failed + (to - from);
    for (size_t i = 0; i < static_cast<size_t>(env_.opts.concurrency) && next_ < end_; ++i) {
        startNext();
    }
    int64_t lastCheck = start;
    auto timeout = static_cast<int64_t>(env_.opts.loginTimeout * 1e9);
    env_.runUntil([&] { return ready + failed >= target; }, 1e9,
                  [&](int64_t now) -> int64_t {
                      if (now - lastCheck < 1000000000) {
                          return 0;
                      }
                      lastCheck = now;
                      // A login that takes longer than --login-timeout counts as failed.
                      for (size_t i = from; i < to; ++i) {
                          XmppConn& c = *conns[i];
                          if (loggingIn_[i] && now - c.loginStartedNs() > timeout) {
                              c.close();
                              onFailed(c, std::string("login timed out in phase ") + c.phaseName());
                          }
                      }
                      return 0;
                  });
    return nsToSec(nowNs() - start);
}

void SessionSet::startNext() {
    size_t i = next_++;
    ++inFlight_;
    loggingIn_[i] = 1;
    std::string user = env_.userName(userOf_[i]);
    std::string password = env_.passwordFor(user);
    conns[i]->login(std::move(user), std::move(password), presenceOf_[i], env_.sources.next());
}

void SessionSet::onReady(XmppConn& conn) {
    auto i = static_cast<size_t>(conn.index());
    loggingIn_[i] = 0;
    --inFlight_;
    ++ready;
    if (next_ < end_) {
        startNext();
    }
}

void SessionSet::onStanza(XmppConn& conn, std::string_view stanza) {
    if (onStanzaFn) {
        onStanzaFn(conn, stanza);
    }
}

void SessionSet::onFailed(XmppConn& conn, std::string_view why) {
    auto i = static_cast<size_t>(conn.index());
    if (!loggingIn_[i]) {
        if (onLostFn) {
            onLostFn(conn, why);
        }
        return;
    }
    loggingIn_[i] = 0;
    --inFlight_;
    ++failed;
    if (firstError.empty()) {
        firstError = conn.user() + ": " + std::string(why);
        std::fprintf(stderr, "xmpp-load: login failed: %s\n", firstError.c_str());
    }
    // Deferred: a refused connect fails inside login(), which would recurse here.
    env_.loop.defer([this] {
        if (next_ < end_) {
            startNext();
        }
    });
}

void SessionSet::logoutAll() {
    for (auto& c : conns) {
        c->logout();
    }
}

}  // namespace bench
