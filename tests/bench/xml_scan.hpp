// A minimal XMPP stream splitter for the load generator. It finds where each
// top-level element (stanza) begins and ends without building a tree, so one
// core can drive tens of thousands of sessions. It trusts the server to send
// well-formed XML; it is not a validating parser.
#pragma once

#include <cstddef>
#include <string_view>

namespace bench {

enum class ScanKind { StreamOpen, Element, StreamClose };

class ScanSink {
  public:
    virtual ~ScanSink() = default;
    // Returns false to stop scanning (the rest of the buffer is not XML, or the
    // connection went away).
    virtual bool onItem(ScanKind kind, std::string_view bytes) = 0;
};

class StreamScanner {
  public:
    // Hands every complete item of `buf` to `sink`; returns how many bytes were
    // used (the rest is an incomplete item to be fed again with more bytes).
    size_t scan(std::string_view buf, ScanSink& sink);
    // The next bytes begin a new stream (after STARTTLS or SASL success).
    void restart() { depth_ = 0; }

  private:
    int depth_ = 0;
};

// The element's name as written ("stream:features", "message").
std::string_view tagName(std::string_view element);
// The value of attribute `name` in the element's start tag, undecoded; empty when absent.
std::string_view attrValue(std::string_view element, std::string_view name);
// The text inside the first <child ...>...</child> of the element; empty when absent.
std::string_view childText(std::string_view element, std::string_view child);

}  // namespace bench
