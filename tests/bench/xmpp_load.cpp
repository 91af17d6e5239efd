// xmpp-load: a single-threaded XMPP load generator. See docs/BENCHMARKS.md.
//
//   xmpp-load MODE [--option value]...
//
// Prints progress on stderr and exactly one "RESULT mode=... key=value ..."
// line on stdout. Exit status: 0 ok, 1 errors (failed logins, lost sessions,
// bad arguments), 2 a message was lost, duplicated or misrouted.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <string>

#include "tests/bench/load.hpp"

namespace {

using bench::Options;

const char* kUsage = R"(usage: xmpp-load MODE [options]

modes:
  idle       log in --warmup-sessions, then --sessions more; hold them for --duration
  login      --concurrency parallel loops of full logins (TLS, SASL, bind, presence)
  pairs      --pairs pairs of users send each other messages (closed loop with
             --window in flight per sender, or open loop at --rate msgs/s in total)
  offline    --senders send --messages to --recipients offline users, who then
             log in and receive them
  raw-pairs  pairs over raw-relay: fixed-size frames, no XMPP

connection:
  --host 127.0.0.1  --port 5222  --tls starttls|direct|none  --domain localhost
  --mechanism SCRAM-SHA-256|SCRAM-SHA-1|PLAIN
  --sources N        source addresses 127.0.0.1..N in turn (default 16)
  --label NAME       the server's name in the RESULT line
  --server-pid PID   sample that process's CPU and RSS (/proc)
users:
  --user-prefix u  --users N  --first-user 1  --password P ("%u" = the user name)
timing (seconds):
  --duration 10  --warmup 3  --settle 5  --drain 10  --login-timeout 60
sizes:
  --sessions N  --warmup-sessions N  --pairs N  --window W  --rate R
  --body-size B  --to bare|full  --frame-size F  --concurrency C
  --messages M  --senders S  --recipients R  --batch B
  --release-buffers  (SSL_MODE_RELEASE_BUFFERS: less generator memory per session)
  --busy-poll        never sleep in epoll_wait (latency runs: no wake-up delay on the
                     generator's side; its CPU use then reads 100%)
)";

[[noreturn]] void usage(const std::string& error) {
    if (!error.empty()) {
        std::fprintf(stderr, "xmpp-load: %s\n", error.c_str());
    }
    std::fputs(kUsage, stderr);
    std::exit(1);
}

Options parse(int argc, char** argv) {
    Options o;
    if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
        usage("");
    }
    o.mode = argv[1];
    auto integer = [](int& field) { return [&field](const std::string& v) { field = std::stoi(v); }; };
    auto real = [](double& field) { return [&field](const std::string& v) { field = std::stod(v); }; };
    auto text = [](std::string& field) { return [&field](const std::string& v) { field = v; }; };
    std::map<std::string, std::function<void(const std::string&)>> options = {
        {"--label", text(o.label)},
        {"--host", text(o.host)},
        {"--port", integer(o.port)},
        {"--tls",
         [&](const std::string& v) {
             if (v == "starttls") {
                 o.tls = bench::TlsMode::StartTls;
             } else if (v == "direct") {
                 o.tls = bench::TlsMode::Direct;
             } else if (v == "none") {
                 o.tls = bench::TlsMode::None;
             } else {
                 usage("--tls takes starttls, direct or none");
             }
         }},
        {"--domain", text(o.domain)},
        {"--mechanism", text(o.mechanism)},
        {"--user-prefix", text(o.userPrefix)},
        {"--users", integer(o.users)},
        {"--first-user", integer(o.firstUser)},
        {"--password", text(o.password)},
        {"--sessions", integer(o.sessions)},
        {"--warmup-sessions", integer(o.warmupSessions)},
        {"--duration", real(o.duration)},
        {"--warmup", real(o.warmup)},
        {"--settle", real(o.settle)},
        {"--drain", real(o.drain)},
        {"--login-timeout", real(o.loginTimeout)},
        {"--pairs", integer(o.pairs)},
        {"--window", integer(o.window)},
        {"--rate", real(o.rate)},
        {"--body-size", integer(o.bodySize)},
        {"--to",
         [&](const std::string& v) {
             if (v != "bare" && v != "full") {
                 usage("--to takes bare or full");
             }
             o.toFullJid = v == "full";
         }},
        {"--frame-size", integer(o.frameSize)},
        {"--concurrency", integer(o.concurrency)},
        {"--messages", integer(o.messages)},
        {"--senders", integer(o.senders)},
        {"--recipients", integer(o.recipients)},
        {"--batch", integer(o.batch)},
        {"--sources", integer(o.sources)},
        {"--server-pid", integer(o.serverPid)},
    };
    for (int i = 2; i < argc; ++i) {
        std::string key = argv[i];
        if (key == "--release-buffers") {
            o.releaseBuffers = true;
            continue;
        }
        if (key == "--busy-poll") {
            o.busyPoll = true;
            continue;
        }
        auto it = options.find(key);
        if (it == options.end()) {
            usage("unknown option " + key);
        }
        if (i + 1 >= argc) {
            usage(key + " needs a value");
        }
        try {
            it->second(argv[++i]);
        } catch (const std::exception&) {
            usage("bad value for " + key + ": " + argv[i]);
        }
    }
    if (o.mechanism != "SCRAM-SHA-256" && o.mechanism != "SCRAM-SHA-1" && o.mechanism != "PLAIN") {
        usage("--mechanism takes SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN");
    }
    if (o.concurrency < 1 || o.window < 1 || o.duration <= 0 || o.batch < 1) {
        usage("--concurrency, --window, --batch and --duration must be positive");
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    Options o = parse(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);
    try {
        bench::Env env(o);
        std::fprintf(stderr, "xmpp-load: %s against %s:%d, RLIMIT_NOFILE %llu\n", o.mode.c_str(),
                     o.host.c_str(), o.port, static_cast<unsigned long long>(env.nofile));
        if (o.mode == "idle") {
            return bench::runIdle(env);
        }
        if (o.mode == "login") {
            return bench::runLogin(env);
        }
        if (o.mode == "pairs") {
            return bench::runPairs(env);
        }
        if (o.mode == "offline") {
            return bench::runOffline(env);
        }
        if (o.mode == "raw-pairs") {
            return bench::runRawPairs(env);
        }
        usage("unknown mode " + o.mode);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "xmpp-load: %s\n", e.what());
        return 1;
    }
}
