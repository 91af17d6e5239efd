// JID parsing must never crash, and normalisation must be idempotent:
// parse(parse(x).str()) == parse(x).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "xmpp/jid.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    auto jid = xmpp::Jid::parse(input);
    if (jid) {
        auto again = xmpp::Jid::parse(jid->str());
        if (!again || *again != *jid) {
            __builtin_trap();
        }
    }
    return 0;
}
