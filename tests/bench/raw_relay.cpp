// raw-relay: the cost floor of moving bytes. A single-threaded epoll TCP
// relay that pairs consecutive accepted connections and copies whatever one
// sends to the other, with no parsing, no TLS and no routing. xmpp-load's
// raw-pairs mode drives it like the pairs mode drives an XMPP server.
//
//   raw-relay --port P [--address 127.0.0.1]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Side {
    int peer = -1;
    bool paired = false;
    bool writing = false;  // EPOLLOUT on, reading of the peer paused
    std::string pending;
};

class Relay {
  public:
    explicit Relay(int listenFd) : listen_(listenFd), ep_(epoll_create1(EPOLL_CLOEXEC)) {
        set(listen_, EPOLLIN, EPOLL_CTL_ADD);
    }

    void run() {
        std::array<epoll_event, 512> events;
        while (true) {
            int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), -1);
            if (n < 0 && errno != EINTR) {
                std::perror("raw-relay: epoll_wait");
                return;
            }
            for (int i = 0; i < n; ++i) {
                const epoll_event& ev = events[static_cast<size_t>(i)];
                if (ev.data.fd == listen_) {
                    acceptAll();
                } else {
                    onEvent(ev.data.fd, ev.events);
                }
            }
        }
    }

  private:
    void set(int fd, uint32_t events, int op) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        epoll_ctl(ep_, op, fd, &ev);
    }

    Side& side(int fd) {
        if (static_cast<size_t>(fd) >= sides_.size()) {
            sides_.resize(static_cast<size_t>(fd) + 1024);
        }
        return sides_[static_cast<size_t>(fd)];
    }

    void acceptAll() {
        while (true) {
            int fd = accept4(listen_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
                    std::perror("raw-relay: accept");
                }
                if (errno == EINTR || errno == ECONNABORTED) {
                    continue;
                }
                return;
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            side(fd) = Side{};
            if (waiting_ < 0) {
                // Alone for now: only watch for it going away, leave its bytes queued.
                waiting_ = fd;
                set(fd, EPOLLRDHUP, EPOLL_CTL_ADD);
                continue;
            }
            Side& a = side(waiting_);
            Side& b = side(fd);
            a.peer = fd;
            b.peer = waiting_;
            a.paired = b.paired = true;
            set(waiting_, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
            set(fd, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
            waiting_ = -1;
        }
    }

    // Reads from fd only while its peer has nothing queued; writes while fd has.
    void update(int fd) {
        Side& s = side(fd);
        uint32_t events = EPOLLRDHUP;
        if (!side(s.peer).writing) {
            events |= EPOLLIN;
        }
        if (s.writing) {
            events |= EPOLLOUT;
        }
        set(fd, events, EPOLL_CTL_MOD);
    }

    void closeFd(int fd) {
        epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        side(fd) = Side{};
    }

    void closePair(int fd) {
        int peer = side(fd).peer;
        if (fd == waiting_) {
            waiting_ = -1;
        }
        closeFd(fd);
        if (peer >= 0) {
            closeFd(peer);
        }
    }

    void onEvent(int fd, uint32_t events) {
        Side& s = side(fd);
        if (!s.paired) {
            closePair(fd);  // the unpaired connection went away
            return;
        }
        if (events & EPOLLOUT) {
            if (!drain(fd)) {
                return;
            }
        }
        if (events & EPOLLIN) {
            relay(fd);
            return;
        }
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            closePair(fd);
        }
    }

    // Reads once from fd and writes it to the peer; what the peer does not
    // take is queued and reading fd pauses until the peer drains.
    void relay(int fd) {
        static std::array<char, 65536> buf;
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            closePair(fd);
            return;
        }
        if (n < 0) {
            return;
        }
        int peer = side(fd).peer;
        ssize_t w = ::write(peer, buf.data(), static_cast<size_t>(n));
        if (w < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                closePair(fd);
                return;
            }
            w = 0;
        }
        if (w < n) {
            Side& p = side(peer);
            p.pending.append(buf.data() + w, static_cast<size_t>(n - w));
            p.writing = true;
            update(peer);
            update(fd);
        }
    }

    // Writes the queued bytes; returns false when the pair was closed.
    bool drain(int fd) {
        Side& s = side(fd);
        while (!s.pending.empty()) {
            ssize_t w = ::write(fd, s.pending.data(), s.pending.size());
            if (w < 0) {
                if (errno == EAGAIN) {
                    return true;
                }
                if (errno == EINTR) {
                    continue;
                }
                closePair(fd);
                return false;
            }
            s.pending.erase(0, static_cast<size_t>(w));
        }
        if (s.writing) {
            s.writing = false;
            std::string().swap(s.pending);
            update(fd);
            update(s.peer);
        }
        return true;
    }

    int listen_;
    int ep_;
    int waiting_ = -1;
    std::vector<Side> sides_;
};

}  // namespace

int main(int argc, char** argv) {
    std::string address = "127.0.0.1";
    int port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--port") == 0) {
            port = std::atoi(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--address") == 0) {
            address = argv[i + 1];
        }
    }
    if (port <= 0) {
        std::fprintf(stderr, "usage: raw-relay --port P [--address 127.0.0.1]\n");
        return 1;
    }
    std::signal(SIGPIPE, SIG_IGN);
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 65535) != 0) {
        std::fprintf(stderr, "raw-relay: cannot listen on %s:%d: %s\n", address.c_str(), port,
                     std::strerror(errno));
        return 1;
    }
    std::fprintf(stderr, "raw-relay: listening on %s:%d (RLIMIT_NOFILE %llu)\n", address.c_str(), port,
                 static_cast<unsigned long long>(rl.rlim_cur));
    Relay(fd).run();
    return 1;
}
