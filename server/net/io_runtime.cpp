#include "server/net/io_runtime.hpp"

#include <sys/stat.h>

#include <atomic>
#include <boost/asio/buffers_iterator.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "server/net/asio_detail.hpp"

namespace xmppd {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::local::stream_protocol;

namespace {

class AsioWorker final : public Worker {
  public:
    explicit AsioWorker(size_t index) : index_(index), guard_(asio::make_work_guard(io_)) {}
    void post(std::function<void()> fn) override { asio::post(io_, std::move(fn)); }
    size_t index() const override { return index_; }
    bool inThisThread() const override { return std::this_thread::get_id() == threadId_; }

    asio::io_context io_{1};
    size_t index_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::thread thread_;
    std::thread::id threadId_;
};

// Control protocol: the client sends its arguments as netstrings
// ("5:hello,") and shuts down its write side; the server answers
// "<exit code>\n<output>" and closes.
constexpr size_t kMaxControlRequest = 1 << 20;

std::optional<std::vector<std::string>> decodeNetstrings(std::string_view in) {
    std::vector<std::string> out;
    while (!in.empty()) {
        size_t colon = in.find(':');
        if (colon == std::string_view::npos || colon == 0 || colon > 9) {
            return std::nullopt;
        }
        size_t len = 0;
        for (size_t i = 0; i < colon; ++i) {
            if (in[i] < '0' || in[i] > '9') {
                return std::nullopt;
            }
            len = len * 10 + static_cast<size_t>(in[i] - '0');
        }
        if (in.size() < colon + 1 + len + 1 || in[colon + 1 + len] != ',') {
            return std::nullopt;
        }
        out.emplace_back(in.substr(colon + 1, len));
        in.remove_prefix(colon + 1 + len + 1);
    }
    return out;
}

}  // namespace

struct IoRuntime::Impl {
    std::vector<std::unique_ptr<AsioWorker>> workers;
    asio::io_context mainIo{1};
    asio::signal_set signals{mainIo, SIGINT, SIGTERM, SIGHUP};
    std::function<void(int)> signalFn;
    std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
    std::unique_ptr<stream_protocol::acceptor> control;
    std::string controlPath;
    std::vector<std::unique_ptr<asio::steady_timer>> timers;
    std::vector<std::shared_ptr<std::function<void()>>> ticks;
    std::atomic<size_t> nextWorker{0};
    std::atomic<bool> stopped{false};

    AsioWorker& pickWorker() { return *workers[nextWorker.fetch_add(1) % workers.size()]; }

    // Accepts forever; each socket belongs to the worker picked for it and
    // is handed over on that worker's thread.
    void accept(tcp::acceptor& acceptor, std::shared_ptr<SocketAcceptFn> fn) {
        AsioWorker& w = pickWorker();
        acceptor.async_accept(
            w.io_, [this, &acceptor, &w, fn](const boost::system::error_code& ec, tcp::socket socket) {
                if (ec == asio::error::operation_aborted || stopped) {
                    return;
                }
                if (!ec) {
                    asio::post(w.io_, [&w, fn, accepted = AcceptedSocket{std::move(socket)}]() mutable {
                        (*fn)(w, accepted);
                    });
                }
                accept(acceptor, fn);
            });
    }

    uint16_t bind(const ListenerConfig& cfg, std::shared_ptr<SocketAcceptFn> fn);

    void acceptControl(std::shared_ptr<ControlFn> fn) {
        control->async_accept(
            [this, fn](const boost::system::error_code& ec, stream_protocol::socket socket) {
                if (ec == asio::error::operation_aborted || stopped) {
                    return;
                }
                if (!ec) {
                    serveControl(std::make_shared<stream_protocol::socket>(std::move(socket)), fn);
                }
                acceptControl(fn);
            });
    }

    void serveControl(std::shared_ptr<stream_protocol::socket> socket, std::shared_ptr<ControlFn> fn) {
        auto buf = std::make_shared<asio::streambuf>(kMaxControlRequest);
        asio::async_read(*socket, *buf, [socket, buf, fn](const boost::system::error_code& ec, size_t) {
            if (ec && ec != asio::error::eof) {
                return;
            }
            std::string request(asio::buffers_begin(buf->data()), asio::buffers_end(buf->data()));
            auto reply = [socket](int code, std::string out) {
                auto text = std::make_shared<std::string>(std::to_string(code) + "\n" + out);
                asio::post(socket->get_executor(), [socket, text] {
                    asio::async_write(*socket, asio::buffer(*text),
                                      [socket, text](const boost::system::error_code&, size_t) {
                                          boost::system::error_code ignored;
                                          socket->close(ignored);
                                      });
                });
            };
            auto args = decodeNetstrings(request);
            if (!args || args->empty()) {
                reply(2, "malformed control request\n");
                return;
            }
            (*fn)(std::move(*args), reply);
        });
    }
};

IoRuntime::IoRuntime(int workers) : impl_(std::make_unique<Impl>()) {
    for (int i = 0; i < std::max(1, workers); ++i) {
        impl_->workers.push_back(std::make_unique<AsioWorker>(static_cast<size_t>(i)));
    }
}

IoRuntime::~IoRuntime() {
    stop();
}

size_t IoRuntime::workerCount() const {
    return impl_->workers.size();
}
Worker& IoRuntime::worker(size_t i) {
    return *impl_->workers.at(i);
}

uint16_t IoRuntime::Impl::bind(const ListenerConfig& cfg, std::shared_ptr<SocketAcceptFn> fn) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(cfg.address, ec);
    if (ec) {
        throw std::runtime_error("listener address '" + cfg.address + "' is not an IP address");
    }
    // The acceptor lives on worker 0; accepted sockets go to any worker.
    auto acceptor = std::make_unique<tcp::acceptor>(workers[0]->io_);
    tcp::endpoint ep(address, cfg.port);
    acceptor->open(ep.protocol(), ec);
    if (!ec) {
        acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
        if (address.is_v6()) {
            acceptor->set_option(asio::ip::v6_only(false), ec);
        }
        ec.clear();
        acceptor->bind(ep, ec);
    }
    if (!ec) {
        acceptor->listen(4096, ec);
    }
    if (ec) {
        throw std::runtime_error("cannot listen on [" + cfg.address + "]:" + std::to_string(cfg.port) + ": " +
                                 ec.message());
    }
    uint16_t port = acceptor->local_endpoint().port();
    accept(*acceptor, std::move(fn));
    acceptors.push_back(std::move(acceptor));
    return port;
}

uint16_t IoRuntime::listen(const ListenerConfig& cfg, TlsContext* tls, size_t maxOutboundBytes,
                           AcceptFn onAccept) {
    bool directTls = cfg.directTls;
    return impl_->bind(
        cfg,
        std::make_shared<SocketAcceptFn>([tls, directTls, maxOutboundBytes, onAccept = std::move(onAccept)](
                                             Worker& w, AcceptedSocket& accepted) {
            onAccept(w, makeTcpTransport(std::move(accepted.socket), tls, directTls, maxOutboundBytes));
        }));
}

uint16_t IoRuntime::listenSockets(const ListenerConfig& cfg, SocketAcceptFn onAccept) {
    return impl_->bind(cfg, std::make_shared<SocketAcceptFn>(std::move(onAccept)));
}

void IoRuntime::listenControl(const std::string& path, ControlFn onRequest) {
    std::error_code fec;
    std::filesystem::remove(path, fec);
    impl_->control = std::make_unique<stream_protocol::acceptor>(impl_->workers[0]->io_);
    boost::system::error_code ec;
    stream_protocol::endpoint ep(path);
    impl_->control->open(ep.protocol(), ec);
    // The socket is created with mode 0600: only the server's user may talk to it.
    mode_t old = ::umask(0177);
    if (!ec) {
        impl_->control->bind(ep, ec);
    }
    ::umask(old);
    if (!ec) {
        impl_->control->listen(64, ec);
    }
    if (ec) {
        throw std::runtime_error("cannot create control socket " + path + ": " + ec.message());
    }
    impl_->controlPath = path;
    impl_->acceptControl(std::make_shared<ControlFn>(std::move(onRequest)));
}

void IoRuntime::every(std::chrono::milliseconds period, std::function<void(Worker&)> fn) {
    auto shared = std::make_shared<std::function<void(Worker&)>>(std::move(fn));
    for (auto& w : impl_->workers) {
        auto timer = std::make_unique<asio::steady_timer>(w->io_);
        auto* t = timer.get();
        AsioWorker* worker = w.get();
        auto tick = std::make_shared<std::function<void()>>();
        std::weak_ptr<std::function<void()>> weakTick = tick;
        *tick = [t, worker, period, shared, weakTick] {
            t->expires_after(period);
            t->async_wait([worker, shared, weakTick](const boost::system::error_code& ec) {
                auto again = weakTick.lock();
                if (ec || !again) {
                    return;
                }
                (*shared)(*worker);
                (*again)();
            });
        };
        (*tick)();
        impl_->timers.push_back(std::move(timer));
        impl_->ticks.push_back(tick);  // the tick lives as long as its timer
    }
}

void IoRuntime::onSignal(std::function<void(int)> fn) {
    impl_->signalFn = std::move(fn);
}

void IoRuntime::run() {
    for (auto& w : impl_->workers) {
        AsioWorker* worker = w.get();
        worker->thread_ = std::thread([worker] {
            worker->threadId_ = std::this_thread::get_id();
            worker->io_.run();
        });
    }
    std::function<void()> waitSignal;
    waitSignal = [this, &waitSignal] {
        impl_->signals.async_wait([this, &waitSignal](const boost::system::error_code& ec, int sig) {
            if (ec) {
                return;
            }
            if (impl_->signalFn) {
                impl_->signalFn(sig);
            }
            if (!impl_->stopped) {
                waitSignal();
            }
        });
    };
    waitSignal();
    auto guard = asio::make_work_guard(impl_->mainIo);
    impl_->mainIo.run();
}

void IoRuntime::closeListeners() {
    // Runs the closes on worker 0, which owns the acceptors.
    std::promise<void> done;
    auto fut = done.get_future();
    asio::post(impl_->workers[0]->io_, [this, &done] {
        boost::system::error_code ec;
        for (auto& a : impl_->acceptors) {
            a->close(ec);
        }
        if (impl_->control) {
            impl_->control->close(ec);
            std::error_code fec;
            std::filesystem::remove(impl_->controlPath, fec);
        }
        done.set_value();
    });
    fut.wait();
}

void IoRuntime::stop() {
    if (impl_->stopped.exchange(true)) {
        return;
    }
    for (auto& w : impl_->workers) {
        asio::post(w->io_, [w = w.get()] {
            w->guard_.reset();
            w->io_.stop();
        });
    }
    for (auto& w : impl_->workers) {
        if (w->thread_.joinable()) {
            w->thread_.join();
        }
    }
    impl_->ticks.clear();
    impl_->timers.clear();
    impl_->acceptors.clear();
    impl_->control.reset();
    impl_->mainIo.stop();
}

}  // namespace xmppd
