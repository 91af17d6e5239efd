#pragma once
// Internal to server/net (tls_engine.cpp and its tests): the TLS 1.3 record
// layer of RFC 8446 §5, for a connection whose handshake OpenSSL finished.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace xmppd {

struct Tls13Records {
    // RFC 8446 §B.4. CCM suites are not offered by our context.
    enum class Suite : uint8_t { None, Aes128Gcm, Aes256Gcm, Chacha20Poly1305 };
    enum class Result { Ok, Stopped, PeerClosed, Failed };

    struct Direction {
        std::array<uint8_t, 48> secret{};  // application_traffic_secret_N
        std::array<uint8_t, 32> key{};
        std::array<uint8_t, 12> iv{};
        uint64_t seq = 0;
    };

    class Sink {
      public:
        virtual ~Sink() = default;
        // Returns false to stop reading (the connection is closing).
        virtual bool onApplicationData(std::string_view bytes) = 0;
    };

    // The suite from its IANA code point (0x1301...); None when unsupported.
    static Suite suiteFromId(uint16_t id);
    // Derives both directions' keys from the secrets (sequence numbers 0).
    bool start(Suite s);
    // Opens the peer's records; a trailing partial record is kept. Alerts and
    // KeyUpdate answers are appended to out.
    Result open(std::string_view ciphertext, std::string& out, Sink& sink);
    // Seals application data into records appended to out.
    bool seal(std::string_view plaintext, std::string& out);
    // Sends an alert (close_notify is 0) and, for anything but
    // close_notify, marks the connection failed.
    void alert(uint8_t description, std::string& out);
    void trim();

    Suite suite = Suite::None;
    uint8_t secretLen = 0;
    uint8_t keyLen = 0;
    bool haveClientSecret = false;
    bool haveServerSecret = false;
    bool failed = false;
    bool closeSent = false;
    Direction rx;                        // client to server
    Direction tx;                        // server to client
    std::array<uint8_t, 32> exporter{};  // RFC 9266 tls-exporter value
    bool haveExporter = false;
    std::string error;
    std::string partial;                 // an incomplete record from the peer
    std::array<uint8_t, 5> handshake{};  // a KeyUpdate split across records
    uint8_t handshakeHave = 0;

  private:
    Result record(const uint8_t* rec, size_t len, std::string& out, Sink& sink);
    Result handshakeBytes(const uint8_t* p, size_t n, std::string& out);
    bool sealRecord(uint8_t innerType, const uint8_t* p, size_t n, std::string& out);
    bool rekey(Direction& d);
    Result fail(uint8_t alertDescription, std::string message, std::string& out);
};

}  // namespace xmppd
