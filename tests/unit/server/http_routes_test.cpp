// The HTTP route table: matching, 404/405, duplicates, and the reply a
// handler gets (once only, 500 when it throws or drops it).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <optional>

#include "server/http/health.hpp"
#include "server/http/route_table.hpp"

using namespace xmppd;

namespace {

HttpRequest request(std::string method, std::string path) {
    HttpRequest r;
    r.method = std::move(method);
    r.path = r.target = std::move(path);
    r.peer = "192.0.2.1";
    return r;
}

HttpHandler answering(int status, std::string body) {
    return [status, body](const HttpRequest&, HttpReply reply) {
        HttpResponse response;
        response.status = status;
        response.body = body;
        reply(std::move(response));
    };
}

// Collects what the table answers.
struct Answers {
    std::vector<HttpResponse> responses;
    HttpReply reply() {
        return [this](HttpResponse r) { responses.push_back(std::move(r)); };
    }
    const HttpResponse& only() {
        REQUIRE(responses.size() == 1);
        return responses[0];
    }
};

std::optional<std::string> header(const HttpResponse& r, const std::string& name) {
    for (const auto& [k, v] : r.headers) {
        if (k == name) {
            return v;
        }
    }
    return std::nullopt;
}

}  // namespace

TEST_CASE("a request for a route goes to its handler") {
    HttpRouteTable testling;
    testling.add("mod", {"GET", "/v1/a", answering(200, "a")});
    testling.add("mod", {"POST", "/v1/a", answering(201, "posted")});
    Answers answers;
    testling.dispatch(request("POST", "/v1/a"), answers.reply());
    CHECK(answers.only().status == 201);
    CHECK(answers.only().body == "posted");
    CHECK(testling.size() == 2);
}

TEST_CASE("an unknown path is answered 404 not-found in JSON") {
    HttpRouteTable testling;
    testling.add("mod", {"GET", "/v1/a", answering(200, "a")});
    Answers answers;
    testling.dispatch(request("GET", "/v1/b"), answers.reply());
    CHECK(answers.only().status == 404);
    CHECK(answers.only().contentType == "application/json");
    auto body = nlohmann::json::parse(answers.only().body);
    CHECK(body["error"] == "not-found");
    CHECK(body["text"].get<std::string>().find("/v1/b") != std::string::npos);
}

TEST_CASE("paths match exactly: no prefix, no trailing slash") {
    HttpRouteTable testling;
    testling.add("mod", {"GET", "/v1/a", answering(200, "a")});
    for (const char* path : {"/v1/a/", "/v1", "/v1/ab", "/V1/a"}) {
        Answers answers;
        testling.dispatch(request("GET", path), answers.reply());
        CHECK(answers.only().status == 404);
    }
}

TEST_CASE("a known path with another method is answered 405 with the allowed methods") {
    HttpRouteTable testling;
    testling.add("mod", {"POST", "/v1/a", answering(200, "")});
    testling.add("other", {"GET", "/v1/a", answering(200, "")});
    Answers answers;
    testling.dispatch(request("DELETE", "/v1/a"), answers.reply());
    CHECK(answers.only().status == 405);
    CHECK(nlohmann::json::parse(answers.only().body)["error"] == "method-not-allowed");
    CHECK(header(answers.only(), "Allow") == "GET, POST");
}

TEST_CASE("a second route for the same method and path names both owners") {
    HttpRouteTable testling;
    testling.add("sms_register", {"POST", "/v1/register", answering(200, "")});
    CHECK_THROWS_WITH(
        testling.add("other", {"POST", "/v1/register", answering(200, "")}),
        Catch::Contains("POST /v1/register") && Catch::Contains("sms_register") && Catch::Contains("other"));
    CHECK(testling.size() == 1);
}

TEST_CASE("a route without a method, a path starting with '/' or a handler is refused") {
    HttpRouteTable testling;
    CHECK_THROWS(testling.add("mod", {"", "/a", answering(200, "")}));
    CHECK_THROWS(testling.add("mod", {"GET", "a", answering(200, "")}));
    CHECK_THROWS(testling.add("mod", {"GET", "/a", nullptr}));
    CHECK(testling.size() == 0);
}

TEST_CASE("removing an owner removes its routes only") {
    HttpRouteTable testling;
    testling.add("mod", {"GET", "/v1/a", answering(200, "")});
    testling.add("mod", {"POST", "/v1/b", answering(200, "")});
    testling.add("core", {"GET", "/v1/b", answering(200, "")});
    testling.removeOwner("mod");
    CHECK(testling.size() == 1);
    Answers answers;
    testling.dispatch(request("GET", "/v1/a"), answers.reply());
    testling.dispatch(request("POST", "/v1/b"), answers.reply());
    REQUIRE(answers.responses.size() == 2);
    CHECK(answers.responses[0].status == 404);
    CHECK(answers.responses[1].status == 405);
    // And the route may be registered again (a module restarted).
    testling.add("mod", {"GET", "/v1/a", answering(200, "")});
}

TEST_CASE("a handler that throws is answered 500") {
    HttpRouteTable testling;
    testling.add("mod", {"GET", "/v1/a",
                         [](const HttpRequest&, HttpReply) -> void { throw std::runtime_error("boom"); }});
    Answers answers;
    testling.dispatch(request("GET", "/v1/a"), answers.reply());
    CHECK(answers.only().status == 500);
    CHECK(nlohmann::json::parse(answers.only().body)["error"] == "internal-server-error");
}

TEST_CASE("a handler that answers and then throws is answered once") {
    HttpRouteTable testling;
    testling.add("mod", {"GET", "/v1/a", [](const HttpRequest&, HttpReply reply) {
                             reply(HttpResponse{});
                             throw std::runtime_error("late");
                         }});
    Answers answers;
    testling.dispatch(request("GET", "/v1/a"), answers.reply());
    CHECK(answers.only().status == 200);
}

TEST_CASE("a reply answers once; later calls are ignored") {
    HttpRouteTable testling;
    testling.add("mod", {"GET", "/v1/a", [](const HttpRequest&, HttpReply reply) {
                             HttpResponse first;
                             first.body = "first";
                             reply(first);
                             reply(jsonError(500, "x", "second"));
                         }});
    Answers answers;
    testling.dispatch(request("GET", "/v1/a"), answers.reply());
    CHECK(answers.only().body == "first");
}

TEST_CASE("a reply kept and called later answers then") {
    HttpRouteTable testling;
    HttpReply kept;
    testling.add("mod", {"GET", "/v1/a", [&kept](const HttpRequest&, HttpReply reply) { kept = reply; }});
    Answers answers;
    testling.dispatch(request("GET", "/v1/a"), answers.reply());
    CHECK(answers.responses.empty());
    kept(HttpResponse{204, "", {}, ""});
    CHECK(answers.only().status == 204);
    kept = nullptr;  // the last copy goes: nothing more is sent
    CHECK(answers.responses.size() == 1);
}

TEST_CASE("a reply dropped unanswered answers 500") {
    HttpRouteTable testling;
    HttpReply kept;
    testling.add("mod", {"GET", "/v1/a", [&kept](const HttpRequest&, HttpReply reply) { kept = reply; }});
    Answers answers;
    testling.dispatch(request("GET", "/v1/a"), answers.reply());
    CHECK(answers.responses.empty());
    kept = nullptr;
    CHECK(answers.only().status == 500);
}

TEST_CASE("jsonError is {error, text} with the status and JSON content type") {
    auto testling = jsonError(413, "payload-too-large", "too \"big\"");
    CHECK(testling.status == 413);
    CHECK(testling.contentType == "application/json");
    CHECK(testling.body == R"({"error":"payload-too-large","text":"too \"big\""})");
}

TEST_CASE("jsonError replaces invalid UTF-8 instead of throwing") {
    auto testling = jsonError(404, "not-found", "no such resource: /\xff");
    CHECK(nlohmann::json::parse(testling.body)["error"] == "not-found");
}

TEST_CASE("request headers are found whatever the case of the name asked") {
    HttpRequest testling;
    testling.headers = {{"content-type", "application/json"}, {"x-a", "1"}, {"x-a", "2"}};
    REQUIRE(testling.header("Content-Type"));
    CHECK(*testling.header("Content-Type") == "application/json");
    CHECK(*testling.header("x-a") == "1");
    CHECK(testling.header("x-b") == nullptr);
}

TEST_CASE("GET /v1/health answers status ok and the version") {
    auto testling = healthRoute("1.2.3");
    CHECK(testling.method == "GET");
    CHECK(testling.path == "/v1/health");
    Answers answers;
    testling.handler(request("GET", "/v1/health"), answers.reply());
    CHECK(answers.only().status == 200);
    auto body = nlohmann::json::parse(answers.only().body);
    CHECK(body["status"] == "ok");
    CHECK(body["version"] == "1.2.3");
}
