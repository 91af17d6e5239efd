#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "xmpp/element.hpp"
#include "xmpp/errors.hpp"

namespace xmpp {

struct ParserLimits {
    // RFC 6120 §13.12: servers must be able to bound stanza size.
    size_t maxStanzaBytes = 256 * 1024;
    unsigned maxDepth = 32;  // element nesting inside a stanza, the stanza itself is depth 1
    unsigned maxAttributes = 64;
};

// The opening <stream:stream> tag (RFC 6120 §4.7).
struct StreamHeader {
    std::string to;
    std::string from;
    std::string id;
    std::string version;
    std::string lang;       // xml:lang
    std::string contentNs;  // the default namespace declared on it (jabber:client, jabber:component:accept)
};

class StreamParserHandler {
  public:
    virtual ~StreamParserHandler() = default;
    virtual void onStreamOpen(const StreamHeader& header) = 0;
    // A complete top-level element (stanza or nonza), handed over by value.
    virtual void onElement(Element&& element) = 0;
    virtual void onStreamClose() = 0;
};

// Incremental XML stream parser (expat) restricted to RFC 6120 §11: no DTD,
// comments, processing instructions or entity declarations; only the
// predefined entities. Fed arbitrary chunks; emits events through the handler.
// xmpp/ does no I/O: the caller owns the bytes.
class StreamParser {
  public:
    StreamParser(StreamParserHandler& handler, ParserLimits limits);
    ~StreamParser();
    StreamParser(const StreamParser&) = delete;
    StreamParser& operator=(const StreamParser&) = delete;

    // Parses a chunk. Returns the stream error to send when the input is bad;
    // after an error the parser accepts nothing more until reset().
    // The handler may call pause() from a callback to stop at that event: the
    // rest of the chunk is then discarded (used for STARTTLS, after which the
    // bytes that follow belong to the TLS layer, RFC 6120 §5.4.3.3).
    std::optional<StreamError> feed(std::string_view bytes);

    // Stream restart (after STARTTLS and SASL, RFC 6120 §4.3.3). Must not be
    // called from inside a handler callback; use pause() there.
    void reset();
    void pause();
    // Frees expat's state when the stream sits between stanzas with nothing
    // buffered; the next feed() rebuilds it. Returns whether it did.
    bool releaseIfIdle();

    // New limits from the next byte on (a component's own stanza size, known
    // once its stream header named it).
    void setLimits(const ParserLimits& limits);

    bool streamOpen() const;
    size_t bytesFed() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Parses XML text holding exactly one element in the jabber:client
// namespace (a stored or hand-written stanza), with the parser's usual
// restrictions. nullopt when it is not exactly one well-formed element.
std::optional<Element> parseStanza(std::string_view xml);

}  // namespace xmpp
