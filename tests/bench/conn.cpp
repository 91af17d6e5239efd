#include "tests/bench/conn.hpp"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace bench {

// ---- Loop ----

Loop::Loop() : epfd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (epfd_ < 0) {
        throw std::runtime_error(std::string("epoll_create1: ") + std::strerror(errno));
    }
}

Loop::~Loop() {
    ::close(epfd_);
}

void Loop::add(int fd, Conn* conn) {
    // Edge-triggered with EPOLLOUT always on: no epoll_ctl per write.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = conn;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
        throw std::runtime_error(std::string("epoll_ctl: ") + std::strerror(errno));
    }
}

void Loop::remove(int fd) {
    epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void Loop::runOnce(int64_t timeoutNs) {
    std::array<epoll_event, 512> events;
    // epoll_pwait2 for sub-millisecond timeouts: the open loop sends on a schedule.
    timespec timeout{timeoutNs / 1000000000, timeoutNs % 1000000000};
    int n = epoll_pwait2(epfd_, events.data(), static_cast<int>(events.size()), &timeout, nullptr);
    for (int i = 0; i < n; ++i) {
        static_cast<Conn*>(events[static_cast<size_t>(i)].data.ptr)
            ->onIo(events[static_cast<size_t>(i)].events);
    }
    flushDirty();
    running_.swap(deferred_);
    for (auto& fn : running_) {
        fn();
    }
    running_.clear();
}

void Loop::flushDirty() {
    // flush() may fail a connection, whose owner may write to others: the list can grow.
    for (size_t i = 0; i < dirty_.size(); ++i) {
        dirty_[i]->flush();
    }
    dirty_.clear();
}

uint32_t SourceAddresses::next() {
    if (count_ <= 0) {
        return 0;
    }
    return htonl(0x7f000001u + (turn_++ % static_cast<uint32_t>(count_)));
}

// ---- Conn ----

Conn::Conn(Loop& loop, SSL_CTX* tls) : loop_(loop), tls_(tls) {}

Conn::~Conn() {
    close();
}

bool Conn::connectTo(const sockaddr_in& dst, uint32_t srcAddr) {
    close();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        fail(std::string("socket: ") + std::strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (srcAddr != 0) {
        // Pick the port at connect() time, per destination, not at bind() time.
        setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = srcAddr;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
            fail(std::string("bind: ") + std::strerror(errno));
            return false;
        }
    }
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0 && errno != EINPROGRESS) {
        fail(std::string("connect: ") + std::strerror(errno));
        return false;
    }
    state_ = State::Connecting;
    loop_.add(fd_, this);
    return true;
}

void Conn::startTls(const char* serverName) {
    ssl_ = SSL_new(tls_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, serverName);
    SSL_set_connect_state(ssl_);
    state_ = State::Handshaking;
    continueHandshake();
}

void Conn::continueHandshake() {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        state_ = State::Open;
        onTlsReady();
        if (fd_ >= 0) {
            if (pendingBytes() > 0) {
                loop_.markDirty(this);
                dirty_ = true;
            }
            readAvailable();
        }
        return;
    }
    int err = SSL_get_error(ssl_, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return;
    }
    char msg[256];
    ERR_error_string_n(ERR_get_error(), msg, sizeof msg);
    fail(std::string("TLS handshake failed: ") + msg);
}

void Conn::onIo(uint32_t events) {
    if (fd_ < 0) {
        return;
    }
    switch (state_) {
        case State::Connecting: {
            int err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
            if (err != 0) {
                fail(std::string("connect: ") + std::strerror(err));
                return;
            }
            if (!(events & (EPOLLOUT | EPOLLIN))) {
                return;
            }
            state_ = State::Open;
            onConnected();
            if (fd_ >= 0 && state_ == State::Open && pendingBytes() > 0 && !dirty_) {
                dirty_ = true;
                loop_.markDirty(this);
            }
            return;
        }
        case State::Handshaking:
            continueHandshake();
            return;
        case State::Open:
            readAvailable();
            if (fd_ >= 0 && writeBlocked_) {
                flush();
            }
            return;
        case State::Idle:
            return;
    }
}

void Conn::readAvailable() {
    static std::array<char, 65536> buf;
    while (fd_ >= 0) {
        if (ssl_) {
            ERR_clear_error();
            int n = SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()));
            if (n > 0) {
                onBytes(std::string_view(buf.data(), static_cast<size_t>(n)));
                continue;
            }
            int err = SSL_get_error(ssl_, n);
            if (err == SSL_ERROR_WANT_READ) {
                return;
            }
            if (err == SSL_ERROR_WANT_WRITE) {
                writeBlocked_ = true;
                return;
            }
            if (err == SSL_ERROR_ZERO_RETURN) {
                fail("closed by the server (TLS close_notify)");
                return;
            }
            if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                fail(errno != 0 ? std::string("read: ") + std::strerror(errno) : "closed by the server");
                return;
            }
            char msg[256];
            ERR_error_string_n(ERR_get_error(), msg, sizeof msg);
            fail(std::string("TLS error: ") + msg);
            return;
        }
        ssize_t n = ::read(fd_, buf.data(), buf.size());
        if (n > 0) {
            onBytes(std::string_view(buf.data(), static_cast<size_t>(n)));
            continue;
        }
        if (n == 0) {
            fail("closed by the server");
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return;
        }
        if (errno != EINTR) {
            fail(std::string("read: ") + std::strerror(errno));
            return;
        }
    }
}

void Conn::send(std::string_view bytes) {
    if (fd_ < 0) {
        return;
    }
    out_.append(bytes);
    if (!dirty_) {
        dirty_ = true;
        loop_.markDirty(this);
    }
}

void Conn::flush() {
    dirty_ = false;
    if (fd_ < 0 || state_ != State::Open) {
        return;
    }
    constexpr size_t kMaxWrite = 1 << 20;
    while (outPos_ < out_.size()) {
        size_t len = std::min(out_.size() - outPos_, kMaxWrite);
        if (ssl_) {
            ERR_clear_error();
            int n = SSL_write(ssl_, out_.data() + outPos_, static_cast<int>(len));
            if (n <= 0) {
                int err = SSL_get_error(ssl_, n);
                if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                    writeBlocked_ = true;
                    return;
                }
                fail("TLS write failed");
                return;
            }
            outPos_ += static_cast<size_t>(n);
        } else {
            ssize_t n = ::write(fd_, out_.data() + outPos_, len);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    writeBlocked_ = true;
                    return;
                }
                if (errno == EINTR) {
                    continue;
                }
                fail(std::string("write: ") + std::strerror(errno));
                return;
            }
            outPos_ += static_cast<size_t>(n);
        }
    }
    writeBlocked_ = false;
    outPos_ = 0;
    if (out_.capacity() > 65536) {
        std::string().swap(out_);
    } else {
        out_.clear();
    }
}

void Conn::close() {
    if (fd_ < 0) {
        return;
    }
    loop_.remove(fd_);
    if (ssl_) {
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
    ::close(fd_);
    fd_ = -1;
    state_ = State::Idle;
    std::string().swap(out_);
    outPos_ = 0;
    writeBlocked_ = false;
}

void Conn::fail(std::string_view why) {
    close();
    onDisconnect(why);
}

SSL_CTX* makeClientTlsContext() {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        throw std::runtime_error("SSL_CTX_new failed");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    // We append to the buffer between retries of a blocked SSL_write.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    return ctx;
}

}  // namespace bench
