// TCP transport with optional TLS through OpenSSL memory BIOs. Reads use
// async_wait + a per-thread buffer, so an idle connection holds no read
// buffer; TLS buffers are released when empty (SSL_MODE_RELEASE_BUFFERS).
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "server/net/asio_detail.hpp"
#include "server/net/tls.hpp"

namespace xmppd {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

constexpr size_t kReadChunk = 16 * 1024;

class TcpTransport final : public Transport, public std::enable_shared_from_this<TcpTransport> {
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

    ~TcpTransport() override { freeTls(); }

    void setHandler(TransportHandler* handler) override { handler_ = handler; }

    void start() override {
        if (directTls_) {
            beginTls();
        }
        armRead();
    }

    void send(std::string_view bytes) override {
        if (closed_ || closing_) {
            return;
        }
        if (ssl_) {
            if (!handshakeDone_) {
                return;  // nothing may be sent in clear once TLS was asked for
            }
            ERR_clear_error();
            if (SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) <= 0) {
                fail("TLS write failed");
                return;
            }
            drainTls();
        } else {
            pending_.append(bytes);
        }
        startWrite();
    }

    void startTls() override {
        if (!ssl_ && tls_) {
            beginTls();
        }
    }

    bool isTls() const override { return ssl_ && handshakeDone_; }

    std::string channelBinding(std::string_view type) const override {
        if (!isTls()) {
            return {};
        }
        if (type == "tls-exporter") {
            // RFC 9266: defined for TLS 1.3 only.
            if (SSL_version(ssl_) != TLS1_3_VERSION) {
                return {};
            }
            unsigned char out[32];
            static const char kLabel[] = "EXPORTER-Channel-Binding";
            if (SSL_export_keying_material(ssl_, out, sizeof out, kLabel, sizeof kLabel - 1, nullptr, 0, 0) !=
                1) {
                return {};
            }
            return std::string(reinterpret_cast<char*>(out), sizeof out);
        }
        if (type == "tls-server-end-point") {
            // RFC 5929 §4.1: hash of our certificate with its signature's hash,
            // SHA-256 when that is MD5 or SHA-1.
            X509* cert = SSL_get_certificate(ssl_);
            if (!cert) {
                return {};
            }
            int mdNid = NID_sha256;
            int pkNid = 0;
            if (X509_get_signature_info(cert, &mdNid, &pkNid, nullptr, nullptr) != 1 || mdNid == NID_md5 ||
                mdNid == NID_sha1 || mdNid == NID_undef) {
                mdNid = NID_sha256;
            }
            const EVP_MD* md = EVP_get_digestbynid(mdNid);
            if (!md) {
                md = EVP_sha256();
            }
            unsigned char out[EVP_MAX_MD_SIZE];
            unsigned int len = 0;
            if (X509_digest(cert, md, out, &len) != 1) {
                return {};
            }
            return std::string(reinterpret_cast<char*>(out), len);
        }
        return {};
    }

    std::string_view tlsVersion() const override {
        return isTls() ? SSL_get_version(ssl_) : std::string_view();
    }

    void close() override {
        if (closed_ || closing_) {
            return;
        }
        closing_ = true;
        if (ssl_ && handshakeDone_) {
            SSL_shutdown(ssl_);  // close_notify; we do not wait for the peer's
            drainTls();
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

    size_t pendingBytes() const override { return pending_.size() + inflight_.size(); }

    void trim() override {
        // Memory BIOs keep their largest buffer (the handshake's) forever;
        // swap empty ones for fresh ones. SSL_set_bio frees the old pair.
        if (ssl_ && handshakeDone_ && !closed_ && BIO_ctrl_pending(netIn_) == 0 &&
            BIO_ctrl_pending(netOut_) == 0) {
            BIO* in = BIO_new(BIO_s_mem());
            BIO* out = BIO_new(BIO_s_mem());
            if (in && out) {
                BIO_set_mem_eof_return(in, -1);
                BIO_set_mem_eof_return(out, -1);
                SSL_set_bio(ssl_, in, out);
                netIn_ = in;
                netOut_ = out;
            } else {
                BIO_free(in);
                BIO_free(out);
            }
        }
        if (pending_.empty() && pending_.capacity() > 0) {
            std::string().swap(pending_);
        }
    }
    const std::string& peer() const override { return peer_; }

  private:
    void beginTls() {
        ssl_ = SSL_new(tls_->native());
        BIO* in = BIO_new(BIO_s_mem());
        BIO* out = BIO_new(BIO_s_mem());
        BIO_set_mem_eof_return(in, -1);
        BIO_set_mem_eof_return(out, -1);
        SSL_set_bio(ssl_, in, out);
        SSL_set_accept_state(ssl_);
        netIn_ = in;
        netOut_ = out;
    }

    void freeTls() {
        if (ssl_) {
            SSL_free(ssl_);  // frees the BIOs too
            ssl_ = nullptr;
        }
    }

    void armRead() {
        if (closed_ || reading_) {
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
            if (ssl_) {
                feedTls(std::string_view(buf, n));
            } else if (handler_) {
                handler_->onData(std::string_view(buf, n));
            }
            if (closed_ || closing_) {
                return;
            }
            if (n < sizeof buf) {
                break;
            }
        }
        armRead();
    }

    void feedTls(std::string_view data) {
        BIO_write(netIn_, data.data(), static_cast<int>(data.size()));
        if (!handshakeDone_) {
            ERR_clear_error();
            int r = SSL_do_handshake(ssl_);
            if (r != 1) {
                int err = SSL_get_error(ssl_, r);
                drainTls();
                startWrite();
                if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
                    char reason[160];
                    ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
                    fail(std::string("TLS handshake failed: ") + reason);
                }
                return;
            }
            handshakeDone_ = true;
            drainTls();
            startWrite();
            if (handler_) {
                handler_->onTlsEstablished();
            }
            if (closed_ || closing_) {
                return;
            }
        }
        thread_local char plain[kReadChunk];
        for (;;) {
            ERR_clear_error();
            int n = SSL_read(ssl_, plain, sizeof plain);
            if (n > 0) {
                if (handler_) {
                    handler_->onData(std::string_view(plain, static_cast<size_t>(n)));
                }
                if (closed_ || closing_) {
                    return;
                }
                continue;
            }
            int err = SSL_get_error(ssl_, n);
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                break;
            }
            if (err == SSL_ERROR_ZERO_RETURN) {
                finish("TLS closed by peer");
            } else {
                fail("TLS read failed");
            }
            return;
        }
        drainTls();
        startWrite();
    }

    // Moves ciphertext produced by OpenSSL to the write queue.
    void drainTls() {
        char buf[4096];
        while (BIO_ctrl_pending(netOut_) > 0) {
            int n = BIO_read(netOut_, buf, sizeof buf);
            if (n <= 0) {
                break;
            }
            pending_.append(buf, static_cast<size_t>(n));
        }
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

    void fail(const std::string& reason) {
        ERR_clear_error();
        finish(reason);
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
        std::string().swap(pending_);
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
    SSL* ssl_ = nullptr;
    BIO* netIn_ = nullptr;
    BIO* netOut_ = nullptr;
    std::string pending_;
    std::string inflight_;
    std::string peer_;
    std::unique_ptr<asio::steady_timer> closeTimer_;
    bool handshakeDone_ = false;
    bool reading_ = false;
    bool writing_ = false;
    bool closing_ = false;
    bool closed_ = false;
};

}  // namespace

std::shared_ptr<Transport> makeTcpTransport(tcp::socket socket, TlsContext* tls, bool directTls,
                                            size_t maxOutboundBytes) {
    return std::make_shared<TcpTransport>(std::move(socket), tls, directTls, maxOutboundBytes);
}

}  // namespace xmppd
