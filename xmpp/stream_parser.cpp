#include "xmpp/stream_parser.hpp"

#include <expat.h>

#include <cassert>
#include <cstring>
#include <vector>

#include "xmpp/ns.hpp"

namespace xmpp {

namespace {
constexpr char kNsSeparator = '\x01';

// Splits an expat namespaced name "uri\x01local" into its parts.
std::pair<std::string_view, std::string_view> splitName(const char* name) {
    std::string_view n(name);
    size_t sep = n.find(kNsSeparator);
    if (sep == std::string_view::npos) {
        return {std::string_view(), n};
    }
    return {n.substr(0, sep), n.substr(sep + 1)};
}
}  // namespace

struct StreamParser::Impl {
    StreamParserHandler& handler;
    ParserLimits limits;
    XML_Parser parser = nullptr;

    // depth 0: before the stream header; 1: inside the stream; 2+: inside a stanza.
    unsigned depth = 0;
    bool opened = false;
    bool inCallback = false;
    bool paused = false;
    std::optional<StreamError> error;
    std::vector<Element*> stack;  // path from the stanza root to the current element
    Element current;
    std::string pendingDefaultNs;
    // The stream element's namespace declarations, to rebuild the parser's
    // context after releasing it while idle (see releaseIfIdle()).
    std::vector<std::pair<std::string, std::string>> streamDecls;
    bool released = false;
    bool waking = false;

    size_t fed = 0;        // bytes fed since the last reset
    size_t itemStart = 0;  // byte index where the current stanza (or gap between stanzas) began

    Impl(StreamParserHandler& h, ParserLimits l) : handler(h), limits(l) { create(); }
    ~Impl() {
        if (parser) {
            XML_ParserFree(parser);
        }
    }

    void create() {
        released = false;
        streamDecls.clear();
        setUp();
        depth = 0;
        opened = false;
        paused = false;
        error.reset();
        stack.clear();
        current = Element();
        pendingDefaultNs.clear();
        fed = 0;
        itemStart = 0;
    }

    void setUp() {
        if (parser) {
            XML_ParserReset(parser, "UTF-8");
        } else {
            parser = XML_ParserCreateNS("UTF-8", kNsSeparator);
        }
        XML_SetUserData(parser, this);
        XML_SetElementHandler(parser, &Impl::onStart, &Impl::onEnd);
        XML_SetCharacterDataHandler(parser, &Impl::onText);
        XML_SetStartNamespaceDeclHandler(parser, &Impl::onNsDecl);
        // RFC 6120 §11.1: these constructs are forbidden in XMPP streams.
        XML_SetCommentHandler(parser, &Impl::onComment);
        XML_SetProcessingInstructionHandler(parser, &Impl::onPi);
        XML_SetStartDoctypeDeclHandler(parser, &Impl::onDoctype);
        XML_SetEntityDeclHandler(parser, &Impl::onEntityDecl);
        XML_SetParamEntityParsing(parser, XML_PARAM_ENTITY_PARSING_NEVER);
#ifdef XMPPD_EXPAT_HAS_REPARSE_DEFERRAL
        // Expat's reparse deferral (the CVE-2023-52425 fix) holds back a token
        // that arrives in pieces until much more data follows: on a stream
        // that would stall a stanza indefinitely. Our byte limit already
        // bounds token size, which is what the deferral protects against.
        XML_SetReparseDeferralEnabled(parser, XML_FALSE);
#endif
    }

    // An idle stream between stanzas holds no parser: expat's state is
    // several KiB per connection. What it knew (the stream element's
    // namespace context) is rebuilt from streamDecls on the next byte.
    bool releaseIfIdle() {
        bool prefixed = false;
        for (const auto& [prefix, uri] : streamDecls) {
            prefixed = prefixed || (!prefix.empty() && uri == ns::kStream);
        }
        if (!parser || !opened || depth != 1 || itemStart != fed || error || inCallback || !prefixed) {
            return false;
        }
        XML_ParserFree(parser);
        parser = nullptr;
        released = true;
        return true;
    }

    void wake() {
        released = false;
        setUp();
        std::string header = "<";
        for (const auto& [prefix, uri] : streamDecls) {
            if (!prefix.empty() && uri == ns::kStream) {
                header += prefix + ":stream";
                break;
            }
        }
        for (const auto& [prefix, uri] : streamDecls) {
            header += prefix.empty() ? " xmlns='" : " xmlns:" + prefix + "='";
            for (char c : uri) {
                header += c == '\''  ? std::string("&apos;")
                          : c == '&' ? std::string("&amp;")
                                     : std::string(1, c);
            }
            header += "'";
        }
        header += ">";
        waking = true;
        depth = 0;
        XML_Parse(parser, header.data(), static_cast<int>(header.size()), XML_FALSE);
        waking = false;
        // Expat's byte index now counts the synthetic header; keep ours aligned.
        fed = header.size();
        itemStart = fed;
    }

    void fail(StreamCondition c, std::string text = {}) {
        if (!error) {
            error = StreamError{c, std::move(text)};
        }
        XML_StopParser(parser, XML_FALSE);
    }

    static Impl& self(void* data) {
        return *static_cast<Impl*>(data);
    }

    static void onNsDecl(void* data, const XML_Char* prefix, const XML_Char* uri) {
        Impl& p = self(data);
        if (!prefix) {
            p.pendingDefaultNs = uri ? uri : "";
        }
        if (p.depth == 0 && !p.waking) {
            p.streamDecls.emplace_back(prefix ? prefix : "", uri ? uri : "");
        }
    }

    static void onComment(void* data, const XML_Char*) {
        self(data).fail(StreamCondition::RestrictedXml, "comments are not allowed");
    }
    static void onPi(void* data, const XML_Char*, const XML_Char*) {
        self(data).fail(StreamCondition::RestrictedXml, "processing instructions are not allowed");
    }
    static void onDoctype(void* data, const XML_Char*, const XML_Char*, const XML_Char*, int) {
        self(data).fail(StreamCondition::RestrictedXml, "DTDs are not allowed");
    }
    static void onEntityDecl(void* data, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                             const XML_Char*, const XML_Char*, const XML_Char*) {
        self(data).fail(StreamCondition::RestrictedXml, "entity declarations are not allowed");
    }

    static void onStart(void* data, const XML_Char* name, const XML_Char** attrs) {
        Impl& p = self(data);
        if (p.error) {
            return;
        }
        auto [ns, local] = splitName(name);
        if (p.depth == 0) {
            p.openStream(ns, local, attrs);
            return;
        }
        unsigned attrCount = 0;
        for (const XML_Char** a = attrs; *a; a += 2) {
            ++attrCount;
        }
        if (attrCount > p.limits.maxAttributes) {
            p.fail(StreamCondition::PolicyViolation, "too many attributes");
            return;
        }
        if (p.depth - 1 >= p.limits.maxDepth) {
            p.fail(StreamCondition::PolicyViolation, "elements nested too deeply");
            return;
        }
        Element* target;
        if (p.depth == 1) {
            p.current = Element(std::string(local), std::string(ns));
            p.itemStart = static_cast<size_t>(XML_GetCurrentByteIndex(p.parser));
            target = &p.current;
        } else {
            target = &p.stack.back()->addChild(std::string(local), std::string(ns));
        }
        target->reserveAttrs(attrCount);
        for (const XML_Char** a = attrs; *a; a += 2) {
            auto [ans, alocal] = splitName(a[0]);
            if (ans.empty()) {
                target->setAttr(alocal, a[1]);
            } else if (ans == ns::kXml) {
                target->setAttr(std::string("xml:").append(alocal), a[1]);
            } else {
                target->setAttr(std::string(ans).append("|").append(alocal), a[1]);
            }
        }
        p.stack.push_back(target);
        ++p.depth;
        p.pendingDefaultNs.clear();
    }

    void openStream(std::string_view ns, std::string_view local, const XML_Char** attrs) {
        if (waking) {
            depth = 1;
            pendingDefaultNs.clear();
            return;
        }
        if (local != "stream" || ns != ns::kStream) {
            // RFC 6120 §4.9.3.10: wrong stream namespace.
            fail(StreamCondition::InvalidNamespace,
                 "expected <stream:stream> in " + std::string(ns::kStream));
            return;
        }
        StreamHeader header;
        for (const XML_Char** a = attrs; *a; a += 2) {
            auto [ans, alocal] = splitName(a[0]);
            if (ans == ns::kXml && alocal == "lang") {
                header.lang = a[1];
            } else if (ans.empty()) {
                if (alocal == "to") {
                    header.to = a[1];
                } else if (alocal == "from") {
                    header.from = a[1];
                } else if (alocal == "id") {
                    header.id = a[1];
                } else if (alocal == "version") {
                    header.version = a[1];
                }
            }
        }
        header.contentNs = pendingDefaultNs;
        pendingDefaultNs.clear();
        depth = 1;
        opened = true;
        itemStart = static_cast<size_t>(XML_GetCurrentByteIndex(parser) + XML_GetCurrentByteCount(parser));
        handler.onStreamOpen(header);
    }

    static void onEnd(void* data, const XML_Char*) {
        Impl& p = self(data);
        if (p.error) {
            return;
        }
        if (p.depth == 1) {
            p.depth = 0;
            p.handler.onStreamClose();
            return;
        }
        --p.depth;
        p.stack.pop_back();
        if (p.depth == 1) {
            auto end =
                static_cast<size_t>(XML_GetCurrentByteIndex(p.parser) + XML_GetCurrentByteCount(p.parser));
            // A stanza that ends within the slice after the one it began in
            // escapes feed()'s check; its exact size is known here.
            if (end - p.itemStart > p.limits.maxStanzaBytes) {
                p.fail(StreamCondition::PolicyViolation, "stanza too large");
                return;
            }
            p.itemStart = end;
            Element done = std::move(p.current);
            p.current = Element();
            p.handler.onElement(std::move(done));
            if (p.paused) {
                XML_StopParser(p.parser, XML_FALSE);
            }
        }
    }

    static void onText(void* data, const XML_Char* s, int len) {
        Impl& p = self(data);
        if (p.error) {
            return;
        }
        if (p.depth >= 2) {
            p.stack.back()->addText(std::string_view(s, static_cast<size_t>(len)));
            return;
        }
        // Between stanzas only whitespace is meaningful (keepalives, RFC 6120 §4.6.1).
        for (int i = 0; i < len; ++i) {
            char c = s[i];
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                p.fail(StreamCondition::BadFormat, "text is not allowed between stanzas");
                return;
            }
        }
        p.itemStart = static_cast<size_t>(XML_GetCurrentByteIndex(p.parser) + len);
    }

    std::optional<StreamError> feed(std::string_view bytes) {
        assert(!inCallback);
        if (error) {
            return error;
        }
        paused = false;
        if (released) {
            wake();
        }
        // Feed in slices no larger than the stanza limit so that an attacker
        // cannot make expat buffer more than about twice the limit.
        size_t offset = 0;
        while (offset < bytes.size()) {
            size_t n = std::min(bytes.size() - offset, limits.maxStanzaBytes);
            inCallback = true;
            XML_Status status = XML_Parse(parser, bytes.data() + offset, static_cast<int>(n), XML_FALSE);
            inCallback = false;
            fed += n;
            offset += n;
            if (error) {
                return error;
            }
            if (status == XML_STATUS_ERROR) {
                XML_Error code = XML_GetErrorCode(parser);
                if (code == XML_ERROR_ABORTED && paused) {
                    return std::nullopt;
                }
                if (code == XML_ERROR_UNDEFINED_ENTITY) {
                    return StreamError{StreamCondition::RestrictedXml,
                                       "only the predefined entities are allowed"};
                }
                error = StreamError{StreamCondition::NotWellFormed, XML_ErrorString(code)};
                return error;
            }
            // Bytes since the current stanza (or the gap before it) began:
            // bounds a stanza and an unfinished tag alike.
            if (fed - itemStart > limits.maxStanzaBytes) {
                error = StreamError{StreamCondition::PolicyViolation, "stanza too large"};
                return error;
            }
        }
        return std::nullopt;
    }
};

StreamParser::StreamParser(StreamParserHandler& handler, ParserLimits limits)
    : impl_(std::make_unique<Impl>(handler, limits)) {}

void StreamParser::setLimits(const ParserLimits& limits) {
    impl_->limits = limits;
}

StreamParser::~StreamParser() = default;

std::optional<StreamError> StreamParser::feed(std::string_view bytes) {
    return impl_->feed(bytes);
}

void StreamParser::reset() {
    assert(!impl_->inCallback);
    impl_->create();
}

bool StreamParser::releaseIfIdle() {
    return impl_->releaseIfIdle();
}

void StreamParser::pause() {
    impl_->paused = true;
}

bool StreamParser::streamOpen() const {
    return impl_->opened && impl_->depth >= 1;
}

size_t StreamParser::bytesFed() const {
    return impl_->fed;
}

std::optional<Element> parseStanza(std::string_view xml) {
    struct One : StreamParserHandler {
        std::optional<Element> element;
        int count = 0;
        void onStreamOpen(const StreamHeader&) override {}
        void onElement(Element&& e) override {
            ++count;
            element = std::move(e);
        }
        void onStreamClose() override {}
    } sink;
    ParserLimits limits;
    limits.maxStanzaBytes = xml.size() + 1024;
    StreamParser parser(sink, limits);
    if (parser.feed(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>") ||
        parser.feed(xml) || sink.count != 1) {
        return std::nullopt;
    }
    return std::move(sink.element);
}

}  // namespace xmpp
