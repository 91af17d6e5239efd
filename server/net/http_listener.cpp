// The HTTP/1.1 server: the one translation unit that sees Boost.Beast. A
// connection reads one request at a time (pipelined ones wait in its
// buffer), hands it to the route table and writes the answer on its own
// worker when the handler replies, from whatever thread.
#include "server/net/http_listener.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>

#include "server/http/route_table.hpp"
#include "server/net/asio_detail.hpp"
#include "server/net/io_runtime.hpp"
#include "server/net/tls.hpp"
#include "server/worker.hpp"

namespace xmppd {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using std::chrono::seconds;

constexpr size_t kReadChunk = 16 * 1024;
// After an error answer to a request that was not read to its end, the rest
// is read and dropped for this long (and up to this much), so the client
// gets to read the answer instead of a reset.
constexpr auto kLinger = seconds(2);
constexpr size_t kMaxDrainBytes = 1 << 20;

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return beast::iequals(a, b);
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

// A header a handler supplies must not split the response.
bool safeHeader(std::string_view name, std::string_view value) {
    auto bad = [](char c) { return c == '\r' || c == '\n' || c == '\0'; };
    return !name.empty() && std::none_of(name.begin(), name.end(), bad) &&
           name.find(':') == std::string_view::npos && std::none_of(value.begin(), value.end(), bad);
}

// RFC 9110 §5.6.7 IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string httpDate() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[64];
    size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

// The client's address without the port; an IPv4 client of a dual-stack
// listener is shown as IPv4, not as ::ffff:a.b.c.d.
std::string peerAddress(const asio::ip::address& address) {
    if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
    }
    return address.to_string();
}

class Connection {
  public:
    virtual ~Connection() = default;
    virtual void shutdown() = 0;
};

// What the listeners and their connections share; lives as long as any
// connection does.
struct Shared : std::enable_shared_from_this<Shared> {
    Shared(const HttpConfig& l, const HttpRouteTable& r) : limits(l), routes(r) {}

    const HttpConfig limits;
    const HttpRouteTable& routes;
    std::unique_ptr<asio::ssl::context> ssl;  // one for every HTTPS listener
    std::atomic<size_t> live{0};
    std::atomic<uint64_t> nextId{0};
    std::atomic<bool> stopping{false};
    std::atomic<uint64_t> refused{0};
    std::atomic<int64_t> lastRefusalLog{INT64_MIN};
    // The open connections (owned here until they close), with their worker.
    std::mutex mutex;
    std::unordered_map<Connection*, std::pair<size_t, std::shared_ptr<Connection>>> open;

    void accept(Worker& w, AcceptedSocket& accepted, bool tls);
    void refuse(const std::string& peer);
    void closed(Connection* c) {
        std::shared_ptr<Connection> last;  // released outside the lock
        {
            std::lock_guard lock(mutex);
            auto it = open.find(c);
            if (it == open.end()) {
                return;
            }
            last = std::move(it->second.second);
            open.erase(it);
        }
        live.fetch_sub(1);
    }
};

template <class Stream>
class HttpConnection final : public Connection, public std::enable_shared_from_this<HttpConnection<Stream>> {
  public:
    static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

    template <class... StreamArgs>
    HttpConnection(std::shared_ptr<Shared> shared, uint64_t id, std::string peer, StreamArgs&&... args)
        : stream_(std::forward<StreamArgs>(args)...),
          shared_(std::move(shared)),
          limits_(shared_->limits),
          id_(id),
          peer_(std::move(peer)),
          // Room for a whole header (its limit is checked by the parser) plus a read.
          buffer_(std::max(limits_.maxHeaderBytes, kReadChunk) + kReadChunk) {}

    void start() {
        // The first request's deadline runs from the accept: a client that
        // connects and sends nothing (or its TLS handshake slowly) is closed.
        lowest().expires_after(seconds(limits_.requestTimeout));
        if constexpr (kTls) {
            stream_.async_handshake(asio::ssl::stream_base::server,
                                    [self = this->shared_from_this()](const beast::error_code& ec) {
                                        if (ec) {
                                            spdlog::debug("http:{} {}: TLS handshake failed: {}", self->id_,
                                                          self->peer_, ec.message());
                                            self->close();
                                            return;
                                        }
                                        self->awaitRequest();
                                    });
        } else {
            awaitRequest();
        }
    }

    void shutdown() override { close(); }

  private:
    beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

    // Waits for a request's first byte: the first request under the deadline
    // set at accept, the next ones under the keep-alive idle timeout.
    void awaitRequest() {
        if (buffer_.size() > 0) {
            readHeader();  // pipelined: already here
            return;
        }
        if (!first_) {
            lowest().expires_after(seconds(limits_.idleTimeout));
        }
        stream_.async_read_some(buffer_.prepare(kReadChunk), [self = this->shared_from_this()](
                                                                 const beast::error_code& ec, size_t n) {
            self->buffer_.commit(n);
            if (n > 0) {
                self->readHeader();
                return;
            }
            if (ec == beast::error::timeout) {
                spdlog::debug("http:{} {}: {}", self->id_, self->peer_,
                              self->first_ ? "no request within request_timeout" : "idle keep-alive timeout");
            }
            self->close();
        });
    }

    void readHeader() {
        if (!first_) {
            lowest().expires_after(seconds(limits_.requestTimeout));
        }
        parser_.emplace();
        parser_->header_limit(static_cast<uint32_t>(limits_.maxHeaderBytes));
        parser_->body_limit(limits_.maxBodyBytes);
        http::async_read_header(stream_, buffer_, *parser_,
                                [self = this->shared_from_this()](const beast::error_code& ec, size_t) {
                                    if (ec) {
                                        self->readFailed(ec);
                                        return;
                                    }
                                    self->onHeader();
                                });
    }

    void onHeader() {
        const auto& req = parser_->get();
        auto expect = req[http::field::expect];
        if (!equalsIgnoreCase(expect, "100-continue") || parser_->is_done()) {
            readBody();
            return;
        }
        // RFC 9110 §10.1.1: the client waits for this before sending its
        // body (curl does, for a second); its size already passed the limit.
        continue_.emplace(http::status::continue_, req.version());
        http::async_write(stream_, *continue_,
                          [self = this->shared_from_this()](const beast::error_code& ec, size_t) {
                              self->continue_.reset();
                              if (ec) {
                                  self->close();
                                  return;
                              }
                              self->readBody();
                          });
    }

    void readBody() {
        http::async_read(stream_, buffer_, *parser_,
                         [self = this->shared_from_this()](const beast::error_code& ec, size_t) {
                             if (ec) {
                                 self->readFailed(ec);
                                 return;
                             }
                             self->onRequest();
                         });
    }

    void readFailed(const beast::error_code& ec) {
        if (ec == beast::error::timeout) {
            spdlog::info("http:{} {}: request not complete within request_timeout ({} s), closed", id_, peer_,
                         limits_.requestTimeout);
            close();
        } else if (ec == http::error::header_limit) {
            failRequest(
                431, "request-header-fields-too-large",
                "the request header is larger than " + std::to_string(limits_.maxHeaderBytes) + " bytes");
        } else if (ec == http::error::body_limit) {
            failRequest(413, "payload-too-large",
                        "the request body is larger than " + std::to_string(limits_.maxBodyBytes) + " bytes");
        } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
                   ec != http::error::end_of_stream && ec != http::error::partial_message) {
            failRequest(400, "bad-request", "malformed HTTP request: " + ec.message());
        } else {
            spdlog::debug("http:{} {}: read: {}", id_, peer_, ec.message());
            close();
        }
    }

    // Answers a request the connection refused to read to its end, then closes.
    void failRequest(int status, std::string_view error, const std::string& text) {
        // The start line is parsed before the header fields, so a header
        // over a limit still has its method and target.
        std::string method = "-";
        std::string target = "-";
        if (parser_) {
            const auto& req = parser_->get();
            if (!req.method_string().empty() && !req.target().empty()) {
                method = std::string(req.method_string());
                target = std::string(req.target());
                target = target.substr(0, target.find('?'));
            }
        }
        spdlog::info("http:{} {} {} {} -> {} ({})", id_, peer_, method, target, status, text);
        keepAlive_ = false;
        write(jsonError(status, error, text), /*drain=*/true);
    }

    void onRequest() {
        first_ = false;
        auto& req = parser_->get();
        keepAlive_ = req.keep_alive();
        HttpRequest request;
        request.method = std::string(req.method_string());
        request.target = std::string(req.target());
        auto q = request.target.find('?');
        request.path = request.target.substr(0, q);
        if (q != std::string::npos) {
            request.query = request.target.substr(q + 1);
        }
        for (const auto& field : req) {
            request.headers.emplace_back(lowercase(field.name_string()), std::string(field.value()));
        }
        request.body = std::move(req.body());
        request.peer = peer_;
        parser_.reset();
        method_ = request.method;
        path_ = request.path;

        // The reply may come from any thread, after the connection closed:
        // it goes through the worker and finds the connection, or nothing.
        std::weak_ptr<HttpConnection> weak = this->shared_from_this();
        HttpReply reply = [weak, executor = stream_.get_executor()](HttpResponse response) {
            asio::post(executor, [weak, response = std::move(response)]() mutable {
                if (auto self = weak.lock()) {
                    self->respond(std::move(response));
                }
            });
        };
        shared_->routes.dispatch(request, std::move(reply));
    }

    void respond(HttpResponse response) {
        if (closed_) {
            return;
        }
        if (response.status < 100 || response.status > 599) {
            spdlog::warn("http:{} {} {}: handler answered status {}; sent as 500", id_, method_, path_,
                         response.status);
            response = jsonError(500, "internal-server-error", "the request failed");
        }
        if (response.status >= 500) {
            spdlog::info("http:{} {} {} {} -> {}", id_, peer_, method_, path_, response.status);
        } else {
            spdlog::debug("http:{} {} {} {} -> {}", id_, peer_, method_, path_, response.status);
        }
        write(std::move(response), /*drain=*/false);
    }

    void write(HttpResponse response, bool drain) {
        response_.emplace();
        auto& res = *response_;
        res.version(11);
        res.result(static_cast<unsigned>(response.status));
        res.set(http::field::server, "xmppd");
        res.set(http::field::date, httpDate());
        if (!response.contentType.empty()) {
            res.set(http::field::content_type, response.contentType);
        }
        bool cacheControl = false;
        for (const auto& [name, value] : response.headers) {
            if (!safeHeader(name, value)) {
                spdlog::warn("http:{} {} {}: header '{}' dropped (control characters)", id_, method_, path_,
                             name);
                continue;
            }
            cacheControl = cacheControl || equalsIgnoreCase(name, "cache-control");
            res.insert(name, value);
        }
        if (!cacheControl) {
            // API answers are per request and often per user: never cached.
            res.set(http::field::cache_control, "no-store");
        }
        res.body() = std::move(response.body);
        res.keep_alive(keepAlive_ && !shared_->stopping);
        res.prepare_payload();
        bool closeAfter = !res.keep_alive();
        lowest().expires_after(seconds(limits_.requestTimeout));
        http::async_write(
            stream_, res,
            [self = this->shared_from_this(), closeAfter, drain](const beast::error_code& ec, size_t) {
                self->response_.reset();
                if (ec) {
                    spdlog::debug("http:{} {}: write: {}", self->id_, self->peer_, ec.message());
                    self->close();
                } else if (closeAfter) {
                    self->finish(drain);
                } else {
                    self->awaitRequest();
                }
            });
    }

    // Ends the connection after its last answer.
    void finish(bool drain) {
        beast::error_code ignored;
        lowest().expires_after(kLinger);
        if (drain) {
            if constexpr (!kTls) {
                lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
            }
            buffer_.clear();
            discard(0);
        } else if constexpr (kTls) {
            // close_notify, then the client's (or its close, or the linger deadline).
            stream_.async_shutdown(
                [self = this->shared_from_this()](const beast::error_code&) { self->close(); });
        } else {
            lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
            close();
        }
    }

    void discard(size_t total) {
        stream_.async_read_some(buffer_.prepare(kReadChunk), [self = this->shared_from_this(), total](
                                                                 const beast::error_code& ec, size_t n) {
            self->buffer_.clear();
            if (ec || total + n > kMaxDrainBytes) {
                self->close();
                return;
            }
            self->discard(total + n);
        });
    }

    void close() {
        if (closed_) {
            return;
        }
        closed_ = true;
        auto self = this->shared_from_this();  // closed() may drop the registry's reference
        beast::error_code ignored;
        lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
        lowest().close();
        shared_->closed(this);
    }

    Stream stream_;
    std::shared_ptr<Shared> shared_;
    const HttpConfig& limits_;
    uint64_t id_;
    std::string peer_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::optional<http::response<http::empty_body>> continue_;
    std::optional<http::response<http::string_body>> response_;
    std::string method_;  // of the request being answered, for the log
    std::string path_;
    bool first_ = true;
    bool keepAlive_ = false;
    bool closed_ = false;
};

void Shared::refuse(const std::string& peer) {
    // One line per second at most: a flood must not flood the log too.
    uint64_t n = refused.fetch_add(1) + 1;
    int64_t now =
        std::chrono::duration_cast<seconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t last = lastRefusalLog.load();
    if (now != last && lastRefusalLog.compare_exchange_strong(last, now)) {
        spdlog::warn(
            "http: {} connections open (http.max_connections): closed the one from {} ({} refused so far)",
            limits.maxConnections, peer, n);
    }
}

void Shared::accept(Worker& w, AcceptedSocket& accepted, bool tls) {
    beast::error_code ec;
    auto ep = accepted.socket.remote_endpoint(ec);
    if (ec || stopping) {
        return;  // gone already, or shutting down: the socket closes here
    }
    std::string peer = peerAddress(ep.address());
    if (live.fetch_add(1) >= limits.maxConnections) {
        live.fetch_sub(1);
        refuse(peer);
        return;
    }
    accepted.socket.set_option(tcp::no_delay(true), ec);
    uint64_t id = nextId.fetch_add(1) + 1;
    auto self = shared_from_this();
    auto track = [&](auto conn) {
        {
            std::lock_guard lock(mutex);
            open.emplace(conn.get(), std::make_pair(w.index(), conn));
        }
        conn->start();
    };
    if (tls) {
        track(std::make_shared<HttpConnection<beast::ssl_stream<beast::tcp_stream>>>(
            self, id, std::move(peer), std::move(accepted.socket), *ssl));
    } else {
        track(std::make_shared<HttpConnection<beast::tcp_stream>>(self, id, std::move(peer),
                                                                  std::move(accepted.socket)));
    }
}

std::unique_ptr<asio::ssl::context> makeSslContext(const TlsConfig& tls) {
    if (tls.certFile.empty()) {
        throw std::runtime_error(
            "an HTTPS listener needs tls.certfile and tls.keyfile (or tls: false on it)");
    }
    auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
    configureServerContext(ctx->native_handle(), tls.certFile, tls.keyFile);
    return ctx;
}

}  // namespace

struct HttpService::Impl {
    std::shared_ptr<Shared> shared;
};

HttpService::HttpService(const HttpConfig& limits, const HttpRouteTable& routes)
    : impl_(std::make_unique<Impl>(Impl{std::make_shared<Shared>(limits, routes)})) {}

HttpService::~HttpService() {
    // Connections hold the shared state and it holds them while they are
    // open: let go of them (at exit the workers have stopped).
    auto& s = *impl_->shared;
    s.stopping = true;
    decltype(s.open) open;
    {
        std::lock_guard lock(s.mutex);
        open.swap(s.open);
    }
}

uint16_t HttpService::listen(IoRuntime& io, const ListenerConfig& listener, const TlsConfig& tls) {
    auto& s = *impl_->shared;
    if (listener.directTls && !s.ssl) {
        s.ssl = makeSslContext(tls);
    }
    return io.listenSockets(
        listener, [shared = impl_->shared, useTls = listener.directTls](Worker& w, AcceptedSocket& accepted) {
            shared->accept(w, accepted, useTls);
        });
}

void HttpService::shutdownWorker(Worker& w) {
    auto& s = *impl_->shared;
    s.stopping = true;
    std::vector<std::shared_ptr<Connection>> mine;
    {
        std::lock_guard lock(s.mutex);
        for (const auto& [_, entry] : s.open) {
            if (entry.first == w.index()) {
                mine.push_back(entry.second);
            }
        }
    }
    for (auto& c : mine) {
        c->shutdown();
    }
}

size_t HttpService::liveConnections() const {
    return impl_->shared->live;
}

}  // namespace xmppd
