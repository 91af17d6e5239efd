#include "server/http/http.hpp"

#include <nlohmann/json.hpp>

#include <cctype>

namespace xmppd {

namespace {

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
        if (equalsIgnoreCase(key, name)) {
            return &value;
        }
    }
    return nullptr;
}

HttpResponse jsonError(int status, std::string_view error, std::string_view text) {
    nlohmann::json body{{"error", error}, {"text", text}};
    HttpResponse response;
    response.status = status;
    // Invalid UTF-8 in the text (e.g. a path echoed back) is replaced, never thrown.
    response.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return response;
}

}  // namespace xmppd
