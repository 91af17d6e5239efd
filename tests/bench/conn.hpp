// The load generator's I/O: one epoll loop and a client connection that
// speaks plain TCP or TLS (OpenSSL on the non-blocking socket). Writes are
// buffered and flushed once per loop iteration, so a burst of stanzas to one
// connection becomes one TLS record and one system call.
#pragma once

#include <netinet/in.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

class Conn;

class Loop {
  public:
    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    void add(int fd, Conn* conn);
    void remove(int fd);
    // Runs one iteration: waits up to timeoutNs, handles the events, then
    // flushes the connections written to and runs deferred work.
    void runOnce(int64_t timeoutNs);
    void markDirty(Conn* conn) { dirty_.push_back(conn); }
    // Writes what was sent outside event handling (the open loop's schedule)
    // now rather than after the next wait.
    void flushDirty();
    // Runs after the current batch of events (to recycle a connection safely).
    void defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

  private:
    int epfd_;
    std::vector<Conn*> dirty_;
    std::vector<std::function<void()>> deferred_;
    std::vector<std::function<void()>> running_;
};

// Source addresses for outgoing connections: 127.0.0.1 .. 127.0.0.N in turn,
// so that more connections than one address has ephemeral ports can be made.
class SourceAddresses {
  public:
    explicit SourceAddresses(int count) : count_(count) {}
    uint32_t next();  // network order; 0 = let the kernel choose

  private:
    int count_;
    uint32_t turn_ = 0;
};

class Conn {
  public:
    Conn(Loop& loop, SSL_CTX* tls);
    virtual ~Conn();
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    // Starts a non-blocking connect; false (and onDisconnect) on immediate failure.
    bool connectTo(const sockaddr_in& dst, uint32_t srcAddr);
    // Starts the TLS client handshake on the connected socket.
    void startTls(const char* serverName);
    void send(std::string_view bytes);
    void flush();
    // Closes at once; nothing more is reported for this connection.
    void close();
    bool isOpen() const { return fd_ >= 0; }
    bool isTls() const { return ssl_ != nullptr; }
    size_t pendingBytes() const { return out_.size() - outPos_; }

    void onIo(uint32_t events);

  protected:
    virtual void onConnected() = 0;
    virtual void onTlsReady() = 0;
    virtual void onBytes(std::string_view bytes) = 0;
    virtual void onDisconnect(std::string_view why) = 0;
    // Fails the connection: closes it and reports why.
    void fail(std::string_view why);

  private:
    enum class State { Idle, Connecting, Handshaking, Open };
    void readAvailable();
    void continueHandshake();

    Loop& loop_;
    SSL_CTX* tls_;
    SSL* ssl_ = nullptr;
    int fd_ = -1;
    State state_ = State::Idle;
    std::string out_;
    size_t outPos_ = 0;
    bool dirty_ = false;
    bool writeBlocked_ = false;
};

// A client SSL_CTX: no certificate verification (every server in the bench
// uses the same self-signed certificate), no session resumption, small buffers.
SSL_CTX* makeClientTlsContext();

}  // namespace bench
