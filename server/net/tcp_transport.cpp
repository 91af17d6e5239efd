// TCP transport with optional TLS (TlsEngine: OpenSSL for the handshake,
// then a compact TLS 1.3 record layer). Reads use async_wait + a per-thread
// buffer, so an idle connection holds no read buffer.
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "server/net/asio_detail.hpp"
#include "server/net/tls.hpp"
#include "server/net/tls_engine.hpp"

namespace xmppd {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr size_t kReadChunk = 16 * 1024;

class TcpTransport final : public Transport,
                           public TlsEngine::Sink,
                           public std::enable_shared_from_this<TcpTransport> {
  public:
    TcpTransport(tcp::socket socket, TlsContext* tls, bool directTls, size_t maxOutbound)
        : socket_(std::move(socket)), tls_(tls), directTls_(directTls), maxOutbound_(maxOutbound) {
        boost::system::error_code ec;
        auto ep = socket_.remote_endpoint(ec);
        if (!ec) {
            peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
        }
        socket_.non_blocking(true, ec);
        socket_.set_option(tcp::no_delay(true), ec);
    }

    void setHandler(TransportHandler* handler) override { handler_ = handler; }

    void start() override {
        if (directTls_) {
            engine_ = std::make_unique<TlsEngine>(*tls_);
        }
        armRead();
    }

    // Bytes are queued and written once the current handler is done (a
    // posted flush): the stanzas routed to this connection while one read is
    // processed leave in one TLS record and one send(2).
    void send(std::string_view bytes) override {
        if (closed_ || closing_) {
            return;
        }
        if (engine_) {
            if (!engine_->established()) {
                return;  // nothing may be sent in clear once TLS was asked for
            }
            plain_.append(bytes);
        } else {
            pending_.append(bytes);
        }
        if (!flushScheduled_) {
            flushScheduled_ = true;
            asio::post(socket_.get_executor(), [self = shared_from_this()] {
                self->flushScheduled_ = false;
                self->flush();
            });
        }
    }

    void startTls() override {
        if (!engine_ && tls_) {
            engine_ = std::make_unique<TlsEngine>(*tls_);
        }
    }

    bool isTls() const override { return engine_ && engine_->established(); }

    std::string channelBinding(std::string_view type) const override {
        return isTls() ? engine_->channelBinding(type) : std::string();
    }

    std::string_view tlsVersion() const override { return isTls() ? engine_->version() : std::string_view(); }

    void close() override {
        if (closed_ || closing_) {
            return;
        }
        if (!sealPlain()) {
            return;
        }
        closing_ = true;
        if (isTls()) {
            engine_->close(pending_);  // close_notify; we do not wait for the peer's
        }
        if (pending_.empty() && inflight_.empty()) {
            finish("closed");
            return;
        }
        startWrite();
        // A peer that stops reading must not hold the connection forever.
        closeTimer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
        closeTimer_->expires_after(std::chrono::seconds(5));
        closeTimer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) {
                self->finish("close timed out");
            }
        });
    }

    size_t pendingBytes() const override { return plain_.size() + pending_.size() + inflight_.size(); }

    void trim() override {
        if (engine_) {
            engine_->trim();
        }
        for (std::string* buffer : {&plain_, &pending_}) {
            if (buffer->empty() && buffer->capacity() > 0) {
                std::string().swap(*buffer);
            }
        }
        if (!writing_ && inflight_.capacity() > 0) {
            std::string().swap(inflight_);
        }
    }
    const std::string& peer() const override { return peer_; }

    void pauseReading(std::chrono::milliseconds pause) override {
        if (closed_ || pause.count() <= 0) {
            return;
        }
        paused_ = true;
        if (!pauseTimer_) {
            pauseTimer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
        }
        pauseTimer_->expires_after(pause);
        pauseTimer_->async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec && !self->closed_) {
                self->paused_ = false;
                self->armRead();
            }
        });
    }

  private:
    // TlsEngine::Sink
    bool onHandshakeDone() override {
        if (handler_) {
            handler_->onTlsEstablished();
        }
        return !closed_ && !closing_;
    }
    bool onPlaintext(std::string_view bytes) override {
        if (handler_) {
            handler_->onData(bytes);
        }
        return !closed_ && !closing_;
    }

    void armRead() {
        if (closed_ || reading_ || paused_) {
            return;
        }
        reading_ = true;
        socket_.async_wait(tcp::socket::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               self->reading_ = false;
                               self->onReadable(ec);
                           });
    }

    void onReadable(const boost::system::error_code& waitEc) {
        if (closed_) {
            return;
        }
        if (waitEc) {
            finish(waitEc.message());
            return;
        }
        if (paused_) {
            return;  // the pause timer arms the next read
        }
        thread_local char buf[kReadChunk];
        // A bounded number of reads per wakeup keeps one busy peer from
        // starving the other sessions of this worker.
        for (int round = 0; round < 8; ++round) {
            boost::system::error_code ec;
            size_t n = socket_.read_some(asio::buffer(buf), ec);
            if (ec == asio::error::would_block || ec == asio::error::try_again) {
                break;
            }
            if (ec || n == 0) {
                finish(ec ? ec.message() : "connection closed by peer");
                return;
            }
            if (engine_) {
                feedTls(std::string_view(buf, n));
            } else if (handler_) {
                handler_->onData(std::string_view(buf, n));
            }
            if (closed_ || closing_ || paused_) {
                return;
            }
            if (n < sizeof buf) {
                break;
            }
        }
        armRead();
    }

    void feedTls(std::string_view data) {
        switch (engine_->feed(data, pending_, *this)) {
            case TlsEngine::Result::Ok:
                break;
            case TlsEngine::Result::Stopped:
                return;
            case TlsEngine::Result::PeerClosed:
                finish("TLS closed by peer");
                return;
            case TlsEngine::Result::Failed:
                // The engine may have queued an alert: one best-effort
                // non-blocking write, unless a write is under way.
                if (!writing_ && !pending_.empty()) {
                    boost::system::error_code ec;
                    socket_.write_some(asio::buffer(pending_), ec);
                }
                finish(engine_->error());
                return;
        }
        startWrite();
    }

    // Seals queued plaintext into records (after anything the engine queued
    // itself, such as a KeyUpdate, so records keep their sequence order).
    bool sealPlain() {
        if (plain_.empty()) {
            return true;
        }
        bool ok = engine_->write(plain_, pending_);
        plain_.clear();
        if (!ok) {
            finish(engine_->error());
        }
        return ok;
    }

    void flush() {
        if (closed_ || closing_ || !sealPlain()) {
            return;
        }
        startWrite();
    }

    void startWrite() {
        if (writing_ || closed_ || pending_.empty()) {
            return;
        }
        writing_ = true;
        inflight_.swap(pending_);
        asio::async_write(socket_, asio::buffer(inflight_),
                          [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                              self->writing_ = false;
                              if (self->closed_) {
                                  return;
                              }
                              if (ec) {
                                  self->finish(ec.message());
                                  return;
                              }
                              self->inflight_.clear();
                              // Give memory back once a burst is over.
                              if (self->inflight_.capacity() > 2 * kReadChunk) {
                                  std::string().swap(self->inflight_);
                              }
                              if (!self->pending_.empty()) {
                                  self->startWrite();
                              } else {
                                  if (self->pending_.capacity() > 2 * kReadChunk) {
                                      std::string().swap(self->pending_);
                                  }
                                  if (self->closing_) {
                                      self->finish("closed");
                                  }
                              }
                          });
    }

    void finish(const std::string& reason) {
        if (closed_) {
            return;
        }
        closed_ = true;
        boost::system::error_code ec;
        socket_.shutdown(tcp::socket::shutdown_both, ec);
        socket_.close(ec);
        if (closeTimer_) {
            closeTimer_->cancel();
        }
        if (pauseTimer_) {
            pauseTimer_->cancel();
        }
        std::string().swap(pending_);
        std::string().swap(plain_);
        TransportHandler* h = handler_;
        handler_ = nullptr;
        if (h) {
            h->onClosed(reason);
        }
    }

    tcp::socket socket_;
    TlsContext* tls_;
    bool directTls_;
    [[maybe_unused]] size_t maxOutbound_;
    TransportHandler* handler_ = nullptr;
    std::unique_ptr<TlsEngine> engine_;
    std::string plain_;     // application data not yet sealed (TLS only)
    std::string pending_;   // bytes for the socket, not yet handed to a write
    std::string inflight_;  // bytes of the write under way
    std::string peer_;
    std::unique_ptr<asio::steady_timer> closeTimer_;
    std::unique_ptr<asio::steady_timer> pauseTimer_;  // only for a shaped peer
    bool reading_ = false;
    bool paused_ = false;
    bool writing_ = false;
    bool flushScheduled_ = false;
    bool closing_ = false;
    bool closed_ = false;
};

}  // namespace

std::shared_ptr<Transport> makeTcpTransport(tcp::socket socket, TlsContext* tls, bool directTls,
                                            size_t maxOutboundBytes) {
    return std::make_shared<TcpTransport>(std::move(socket), tls, directTls, maxOutboundBytes);
}

}  // namespace xmppd
