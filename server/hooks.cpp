#include "server/hooks.hpp"

#include <spdlog/spdlog.h>

namespace xmppd {

void reportHookFailure(const std::string& hook, const std::string& module, const char* what) {
    // A failing handler is skipped; it never kills the chain or the session.
    spdlog::error("hook {}: handler of module {} failed: {}", hook, module, what);
}

}  // namespace xmppd
