#pragma once

#include <string>

#include "server/http/http.hpp"

namespace xmppd {

// GET /v1/health -> 200 {"status":"ok","version":...}: the process is up
// and its workers answer (the reply is written by the connection's worker).
HttpRoute healthRoute(std::string version);

}  // namespace xmppd
