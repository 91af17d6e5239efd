// Feeds arbitrary bytes, split at a data-chosen point, to the stream parser
// with small limits; it must never crash, leak or hang, and a split must not
// change the outcome.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "xmpp/serializer.hpp"
#include "xmpp/stream_parser.hpp"

namespace {
struct Sink : xmpp::StreamParserHandler {
    std::vector<std::string> events;
    void onStreamOpen(const xmpp::StreamHeader& h) override { events.push_back("open:" + h.to); }
    void onElement(xmpp::Element&& e) override { events.push_back(xmpp::toString(e)); }
    void onStreamClose() override { events.push_back("close"); }
};

std::pair<std::vector<std::string>, bool> run(std::string_view a, std::string_view b) {
    xmpp::ParserLimits limits;
    limits.maxStanzaBytes = 4096;
    limits.maxDepth = 8;
    limits.maxAttributes = 8;
    Sink sink;
    xmpp::StreamParser parser(sink, limits);
    bool failed = parser.feed(a).has_value();
    if (!failed) {
        failed = parser.feed(b).has_value();
    }
    return {sink.events, failed};
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) {
        return 0;
    }
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    size_t split = input.empty() ? 0 : data[0] % (input.size() + 1);
    auto whole = run(input, {});
    auto parts = run(input.substr(0, split), input.substr(split));
    if (!whole.second && !parts.second && whole.first != parts.first) {
        __builtin_trap();  // a split changed the parse
    }
    return 0;
}
