#include "tests/bench/xml_scan.hpp"

#include <cstring>

namespace bench {

namespace {

constexpr size_t npos = std::string_view::npos;

// The index just after the '>' that ends the tag starting at `lt`, honouring
// quoted attribute values (which may contain '>'); npos when incomplete.
size_t tagEnd(std::string_view buf, size_t lt) {
    char quote = 0;
    for (size_t i = lt + 1; i < buf.size(); ++i) {
        char c = buf[i];
        if (quote) {
            if (c == quote) {
                quote = 0;
            }
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == '>') {
            return i + 1;
        }
    }
    return npos;
}

// For "<!" and "<?" constructs: the index after their terminator, or npos.
size_t specialEnd(std::string_view buf, size_t lt) {
    std::string_view rest = buf.substr(lt);
    size_t end = npos;
    if (rest.substr(0, 4) == "<!--") {
        end = rest.find("-->", 4);
        return end == npos ? npos : lt + end + 3;
    }
    if (rest.substr(0, 9) == "<![CDATA[") {
        end = rest.find("]]>", 9);
        return end == npos ? npos : lt + end + 3;
    }
    if (rest.size() < 2) {
        return npos;
    }
    return tagEnd(buf, lt);
}

// The end of the element starting at `start` (its start tag), or npos.
size_t elementEnd(std::string_view buf, size_t start) {
    int depth = 0;
    size_t pos = start;
    while (true) {
        size_t lt = buf.find('<', pos);
        if (lt == npos || lt + 1 >= buf.size()) {
            return npos;
        }
        char next = buf[lt + 1];
        size_t end = (next == '!' || next == '?') ? specialEnd(buf, lt) : tagEnd(buf, lt);
        if (end == npos) {
            return npos;
        }
        if (next == '/') {
            --depth;
        } else if (next != '!' && next != '?' && buf[end - 2] != '/') {
            ++depth;
        }
        if (depth == 0) {
            return end;
        }
        pos = end;
    }
}

}  // namespace

size_t StreamScanner::scan(std::string_view buf, ScanSink& sink) {
    size_t pos = 0;
    while (true) {
        // Text between top-level items is whitespace (keepalives): skip it.
        size_t lt = buf.find('<', pos);
        if (lt == npos) {
            return buf.size();
        }
        if (lt + 1 >= buf.size()) {
            return lt;
        }
        char next = buf[lt + 1];
        if (next == '?' || next == '!') {
            size_t end = specialEnd(buf, lt);
            if (end == npos) {
                return lt;
            }
            pos = end;
            continue;
        }
        if (depth_ == 0) {
            size_t end = tagEnd(buf, lt);
            if (end == npos) {
                return lt;
            }
            pos = end;
            if (next != '/' && buf[end - 2] != '/') {
                depth_ = 1;
                if (!sink.onItem(ScanKind::StreamOpen, buf.substr(lt, end - lt))) {
                    return pos;
                }
            }
            continue;
        }
        if (next == '/') {
            size_t end = tagEnd(buf, lt);
            if (end == npos) {
                return lt;
            }
            pos = end;
            depth_ = 0;
            if (!sink.onItem(ScanKind::StreamClose, buf.substr(lt, end - lt))) {
                return pos;
            }
            continue;
        }
        size_t end = elementEnd(buf, lt);
        if (end == npos) {
            return lt;
        }
        pos = end;
        if (!sink.onItem(ScanKind::Element, buf.substr(lt, end - lt))) {
            return pos;
        }
    }
}

std::string_view tagName(std::string_view element) {
    size_t i = 1;
    while (i < element.size() && !std::strchr(" \t\r\n/>", element[i])) {
        ++i;
    }
    return element.substr(1, i - 1);
}

std::string_view attrValue(std::string_view element, std::string_view name) {
    size_t end = tagEnd(element, 0);
    std::string_view tag = element.substr(0, end == npos ? element.size() : end);
    size_t pos = 0;
    while ((pos = tag.find(name, pos + 1)) != npos) {
        size_t eq = pos + name.size();
        // Whole attribute names only: preceded by whitespace, followed by '='.
        if (std::strchr(" \t\r\n", tag[pos - 1]) && eq + 1 < tag.size() && tag[eq] == '=') {
            char quote = tag[eq + 1];
            size_t close = tag.find(quote, eq + 2);
            if (close == npos) {
                return {};
            }
            return tag.substr(eq + 2, close - eq - 2);
        }
    }
    return {};
}

std::string_view childText(std::string_view element, std::string_view child) {
    size_t pos = 0;
    while ((pos = element.find(child, pos + 1)) != npos) {
        size_t after = pos + child.size();
        if (element[pos - 1] != '<' || after >= element.size() || !std::strchr(" \t\r\n/>", element[after])) {
            continue;
        }
        size_t open = tagEnd(element, pos - 1);
        if (open == npos || element[open - 2] == '/') {
            return {};
        }
        size_t close = element.find("</", open);
        if (close == npos) {
            return {};
        }
        return element.substr(open, close - open);
    }
    return {};
}

}  // namespace bench
