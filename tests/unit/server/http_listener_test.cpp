// The HTTP listener on a real loopback socket (port 0, plain HTTP): replies
// from other threads, handlers that throw, and replies that come after the
// connection is gone.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "server/http/route_table.hpp"
#include "server/net/http_listener.hpp"
#include "server/net/io_runtime.hpp"
#include "server/worker.hpp"

using namespace xmppd;

namespace {

// One worker, one plain HTTP listener on 127.0.0.1, port 0.
struct Running {
    HttpRouteTable routes;
    HttpConfig limits;
    IoRuntime io{1};
    HttpService testling{limits, routes};
    uint16_t port = 0;
    std::thread thread;

    void start() {
        ListenerConfig l;
        l.address = "127.0.0.1";
        l.module = "http";
        l.directTls = false;
        port = testling.listen(io, l, TlsConfig{});
        thread = std::thread([this] { io.run(); });
    }
    ~Running() {
        io.stop();
        thread.join();
    }
};

// A blocking client socket with a receive timeout (a failing server must
// fail the test, not hang it).
class Client {
  public:
    explicit Client(uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        REQUIRE(fd_ >= 0);
        timeval tv{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    }
    ~Client() { ::close(fd_); }
    void send(std::string_view bytes) {
        REQUIRE(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
    }
    // Everything until the server closes (or the timeout).
    std::string readAll() {
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = ::recv(fd_, buf, sizeof buf, 0)) > 0) {
            out.append(buf, static_cast<size_t>(n));
        }
        return out;
    }

  private:
    int fd_ = -1;
};

std::string get(const std::string& path) {
    return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
}

}  // namespace

TEST_CASE("a reply from another thread is written by the connection's worker") {
    Running r;
    std::thread replier;
    r.routes.add("test", {"GET", "/async", [&replier](const HttpRequest& req, HttpReply reply) {
                              replier = std::thread([reply, peer = req.peer] {
                                  HttpResponse response;
                                  response.body = "{\"peer\":\"" + peer + "\"}";
                                  reply(std::move(response));
                              });
                          }});
    r.start();
    Client client(r.port);
    client.send(get("/async"));
    auto answer = client.readAll();
    replier.join();
    CHECK(answer.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(answer.find("Content-Type: application/json\r\n") != std::string::npos);
    CHECK(answer.find("Cache-Control: no-store\r\n") != std::string::npos);
    CHECK(answer.find("{\"peer\":\"127.0.0.1\"}") != std::string::npos);
}

TEST_CASE("a handler that throws is answered 500 on the wire") {
    Running r;
    r.routes.add("test", {"GET", "/throws",
                          [](const HttpRequest&, HttpReply) -> void { throw std::runtime_error("boom"); }});
    r.start();
    Client client(r.port);
    client.send(get("/throws"));
    auto answer = client.readAll();
    CHECK(answer.rfind("HTTP/1.1 500 ", 0) == 0);
    CHECK(answer.find("\"error\":\"internal-server-error\"") != std::string::npos);
}

TEST_CASE("a handler's own headers are sent, its Cache-Control replaces no-store, unsafe ones are dropped") {
    Running r;
    r.routes.add("test", {"GET", "/headers", [](const HttpRequest&, HttpReply reply) {
                              HttpResponse response;
                              response.status = 201;
                              response.contentType = "text/plain";
                              response.headers = {{"Cache-Control", "max-age=60"},
                                                  {"X-Ok", "yes"},
                                                  {"X-Bad", "a\r\nSet-Cookie: x=1"}};
                              response.body = "made";
                              reply(std::move(response));
                          }});
    r.start();
    Client client(r.port);
    client.send(get("/headers"));
    auto answer = client.readAll();
    CHECK(answer.rfind("HTTP/1.1 201 ", 0) == 0);
    CHECK(answer.find("Content-Type: text/plain\r\n") != std::string::npos);
    CHECK(answer.find("Cache-Control: max-age=60\r\n") != std::string::npos);
    CHECK(answer.find("no-store") == std::string::npos);
    CHECK(answer.find("X-Ok: yes\r\n") != std::string::npos);
    CHECK(answer.find("Set-Cookie") == std::string::npos);
}

TEST_CASE("a reply that comes after the connection was closed is dropped") {
    Running r;
    std::promise<HttpReply> kept;
    r.routes.add("test", {"GET", "/slow", [&kept](const HttpRequest&, HttpReply reply) {
                              kept.set_value(std::move(reply));
                          }});
    r.start();
    Client client(r.port);
    client.send(get("/slow"));
    HttpReply reply = kept.get_future().get();
    // The server goes down while the handler still holds the reply.
    std::promise<void> closed;
    r.io.worker(0).post([&] {
        r.testling.shutdownWorker(r.io.worker(0));
        closed.set_value();
    });
    closed.get_future().get();
    CHECK(client.readAll().empty());
    CHECK(r.testling.liveConnections() == 0);
    reply(HttpResponse{});  // goes to the worker, finds no connection, and is dropped
    std::promise<void> drained;
    r.io.worker(0).post([&] { drained.set_value(); });
    drained.get_future().get();
    reply = nullptr;
}
