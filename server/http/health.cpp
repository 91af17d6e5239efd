#include "server/http/health.hpp"

#include <nlohmann/json.hpp>

namespace xmppd {

HttpRoute healthRoute(std::string version) {
    nlohmann::json body{{"status", "ok"}, {"version", version}};
    return HttpRoute{"GET", "/v1/health", [text = body.dump()](const HttpRequest&, HttpReply reply) {
                         HttpResponse response;
                         response.body = text;
                         reply(std::move(response));
                     }};
}

}  // namespace xmppd
