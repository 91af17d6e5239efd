#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace xmppd {

class TransportHandler {
  public:
    virtual ~TransportHandler() = default;
    // Plaintext bytes from the peer (already decrypted when TLS is on).
    virtual void onData(std::string_view bytes) = 0;
    // The TLS handshake requested by startTls() (or by a direct-TLS listener) finished.
    virtual void onTlsEstablished() = 0;
    // The connection is gone (peer closed, error, or after close()). Called once.
    virtual void onClosed(std::string_view reason) = 0;
};

// A byte stream to one peer: TCP, optionally with TLS. Lives on one worker
// and is used only from that worker's thread. Implemented in tcp_transport.cpp,
// the one translation unit that sees Boost.Asio and OpenSSL's SSL objects.
class Transport {
  public:
    virtual ~Transport() = default;
    virtual void setHandler(TransportHandler* handler) = 0;
    // Starts reading (and, on a direct-TLS listener, the TLS handshake).
    virtual void start() = 0;
    // Queues bytes for writing; never blocks.
    virtual void send(std::string_view bytes) = 0;
    // Server side of STARTTLS: the next bytes from the peer are a TLS ClientHello.
    virtual void startTls() = 0;
    virtual bool isTls() const = 0;
    // Channel binding data for SCRAM-*-PLUS (RFC 5929, RFC 9266); empty when unavailable.
    virtual std::string channelBinding(std::string_view type) const = 0;
    // The channel binding types this connection supports, best first.
    virtual std::string_view tlsVersion() const = 0;
    // Flushes what is queued, then closes. onClosed follows.
    virtual void close() = 0;
    // Bytes queued and not yet written: the per-session queue gauge.
    virtual size_t pendingBytes() const = 0;
    virtual const std::string& peer() const = 0;
    // Gives back buffer memory while the connection is idle.
    virtual void trim() = 0;
    // Stops reading from the peer for `pause` (a shaper holding a sender to
    // its rate); TCP flow control then slows the peer down. Bytes already
    // read are still delivered; reading resumes by itself.
    virtual void pauseReading(std::chrono::milliseconds pause) = 0;
};

}  // namespace xmppd
