// xmpp-load's options, the set of XMPP sessions the modes share, and the modes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/bench/bench_util.hpp"
#include "tests/bench/conn.hpp"
#include "tests/bench/xmpp_conn.hpp"

namespace bench {

struct Options {
    std::string mode;
    std::string label = "server";
    std::string host = "127.0.0.1";
    int port = 5222;
    TlsMode tls = TlsMode::StartTls;
    std::string domain = "localhost";
    std::string mechanism = "SCRAM-SHA-256";
    std::string userPrefix = "u";
    int users = 1000;
    int firstUser = 1;
    std::string password = "password";  // "%u" is replaced by the user name
    int sessions = 1000;                // idle
    int warmupSessions = 1000;          // idle
    double duration = 10;
    double warmup = 3;
    double settle = 5;
    double drain = 10;
    int pairs = 500;     // pairs, raw-pairs
    int window = 4;      // closed loop: messages in flight per sender
    double rate = 0;     // open loop: total messages per second (0 = closed loop)
    int bodySize = 100;  // bytes of <body> text
    bool toFullJid = false;
    int frameSize = 200;  // raw-pairs
    int concurrency = 100;
    int messages = 10000;  // offline
    int senders = 10;
    int recipients = 100;
    int batch = 50;
    int sources = 16;
    int serverPid = 0;
    double loginTimeout = 60;
    bool releaseBuffers = false;
    bool busyPoll = false;  // never sleep in epoll: no wake-up latency on our side
};

// Everything a mode needs: the loop, TLS, the server's address, the start time.
struct Env {
    explicit Env(const Options& o);
    ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    std::string userName(int number) const;
    std::string passwordFor(const std::string& user) const;
    // Runs the loop until done() or `seconds` pass. tick runs every iteration
    // and returns when it wants to run next (0: within a millisecond).
    void runUntil(const std::function<bool()>& done, double seconds,
                  const std::function<int64_t(int64_t)>& tick = {});
    // Adds the generator's own figures (CPU, file limit) and prints the line.
    void print(ResultLine& line) const;

    const Options& opts;
    Loop loop;
    SSL_CTX* tls;
    XmppSettings settings;
    SourceAddresses sources;
    uint64_t nofile;
};

// A set of XMPP sessions logged in in batches of at most `concurrency` at once.
class SessionSet : public XmppEvents {
  public:
    explicit SessionSet(Env& env) : env_(env) {}

    // A session for user number `userNumber`; returns its index.
    int add(int userNumber, bool presence);
    // Logs in sessions [from, to) and runs the loop until each is ready or failed.
    // Returns the seconds it took.
    double loginAll(size_t from, size_t to);
    void logoutAll();

    std::vector<std::unique_ptr<XmppConn>> conns;
    std::function<void(XmppConn&, std::string_view)> onStanzaFn;
    std::function<void(XmppConn&, std::string_view)> onLostFn;  // a ready session went away
    size_t ready = 0;
    size_t failed = 0;
    std::string firstError;

  private:
    void onReady(XmppConn& conn) override;
    void onStanza(XmppConn& conn, std::string_view stanza) override;
    void onFailed(XmppConn& conn, std::string_view why) override;
    void startNext();

    Env& env_;
    std::vector<int> userOf_;
    std::vector<bool> presenceOf_;
    std::vector<uint8_t> loggingIn_;
    size_t next_ = 0;
    size_t end_ = 0;
    size_t inFlight_ = 0;
};

// Load-message bodies: "xl RUN FROM SEQ TS" padded with 'x' to `size` bytes.
void appendLoadBody(std::string& out, std::string_view run, int from, uint32_t seq, int64_t ts, int size);
// Empty when the body is ours and parsed; "stale" (another run) or "foreign" otherwise.
std::string_view parseLoadBody(std::string_view body, std::string_view run, int& from, uint32_t& seq,
                               int64_t& ts);
std::string runId();

int runIdle(Env& env);
int runLogin(Env& env);
int runPairs(Env& env);
int runRawPairs(Env& env);
int runOffline(Env& env);

}  // namespace bench
