// The TLS 1.3 record layer we run after OpenSSL's handshake
// (server/net/tls13_records.cpp) must survive any bytes from a peer:
//  1. the input as ciphertext from the network: never crash, whatever it is;
//  2. the input as application data a peer seals with the mirrored keys:
//     every byte comes out of open() once, in order, whatever the record
//     sizes and however the stream is split.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "server/net/tls13_records.hpp"

namespace {

using xmppd::Tls13Records;

struct Collect final : Tls13Records::Sink {
    std::string got;
    bool onApplicationData(std::string_view bytes) override {
        got.append(bytes);
        return true;
    }
};

Tls13Records::Suite suiteFor(uint8_t b) {
    switch (b % 3) {
        case 0:
            return Tls13Records::Suite::Aes128Gcm;
        case 1:
            return Tls13Records::Suite::Aes256Gcm;
        default:
            return Tls13Records::Suite::Chacha20Poly1305;
    }
}

// A server and the peer it talks to: the peer's write keys are the server's read keys.
void startPair(Tls13Records& server, Tls13Records& peer, Tls13Records::Suite suite) {
    for (size_t i = 0; i < server.rx.secret.size(); ++i) {
        server.rx.secret[i] = static_cast<uint8_t>(i);
        server.tx.secret[i] = static_cast<uint8_t>(0x80 + i);
    }
    server.haveClientSecret = server.haveServerSecret = true;
    peer.rx.secret = server.tx.secret;
    peer.tx.secret = server.rx.secret;
    peer.haveClientSecret = peer.haveServerSecret = true;
    if (!server.start(suite) || !peer.start(suite)) {
        __builtin_trap();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return 0;
    }
    const auto suite = suiteFor(data[0]);
    const size_t split = data[1];
    std::string_view input(reinterpret_cast<const char*>(data + 2), size - 2);

    {  // 1. raw bytes from the network
        Tls13Records server, peer;
        startPair(server, peer, suite);
        Collect sink;
        std::string out;
        server.open(input, out, sink);
    }
    {  // 2. sealed by the peer, opened in pieces of `split + 1` bytes
        Tls13Records server, peer;
        startPair(server, peer, suite);
        std::string wire;
        if (!peer.seal(input, wire)) {
            __builtin_trap();
        }
        Collect sink;
        std::string out;
        for (size_t at = 0; at < wire.size(); at += split + 1) {
            if (server.open(std::string_view(wire).substr(at, split + 1), out, sink) != Tls13Records::Result::Ok) {
                __builtin_trap();
            }
        }
        if (sink.got != input || !out.empty()) {
            __builtin_trap();
        }
    }
    return 0;
}
