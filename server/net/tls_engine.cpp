#include "server/net/tls_engine.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>

#include "server/net/tls.hpp"
#include "server/net/tls13_records.hpp"

namespace xmppd {

namespace {

constexpr size_t kChunk = 16 * 1024;

int hexValue(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// "LABEL <client random hex> <secret hex>" (the NSS key log format OpenSSL writes).
bool parseSecret(std::string_view line, std::string_view label, std::array<uint8_t, 48>& out) {
    if (line.size() <= label.size() || line.substr(0, label.size()) != label || line[label.size()] != ' ') {
        return false;
    }
    auto space = line.find(' ', label.size() + 1);
    if (space == std::string_view::npos) {
        return false;
    }
    std::string_view hex = line.substr(space + 1);
    if (hex.size() % 2 != 0 || hex.size() / 2 > out.size()) {
        return false;
    }
    for (size_t i = 0; i < hex.size() / 2; ++i) {
        int hi = hexValue(hex[2 * i]);
        int lo = hexValue(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return true;
}

class RecordSink final : public Tls13Records::Sink {
  public:
    explicit RecordSink(TlsEngine::Sink& sink) : sink_(sink) {}
    bool onApplicationData(std::string_view bytes) override { return sink_.onPlaintext(bytes); }

  private:
    TlsEngine::Sink& sink_;
};

TlsEngine::Result fromRecords(Tls13Records::Result r) {
    switch (r) {
        case Tls13Records::Result::Ok:
            return TlsEngine::Result::Ok;
        case Tls13Records::Result::Stopped:
            return TlsEngine::Result::Stopped;
        case Tls13Records::Result::PeerClosed:
            return TlsEngine::Result::PeerClosed;
        case Tls13Records::Result::Failed:
            break;
    }
    return TlsEngine::Result::Failed;
}

}  // namespace

TlsEngine::TlsEngine(TlsContext& context) : context_(context) {
    ssl_ = SSL_new(context.native());
    netIn_ = BIO_new(BIO_s_mem());
    netOut_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(netIn_, -1);
    BIO_set_mem_eof_return(netOut_, -1);
    SSL_set_bio(ssl_, netIn_, netOut_);
    SSL_set_accept_state(ssl_);
    SSL_set_app_data(ssl_, this);
}

TlsEngine::~TlsEngine() {
    freeOpenSsl();
}

void TlsEngine::freeOpenSsl() {
    if (ssl_) {
        SSL_free(ssl_);  // frees the BIOs too
        ssl_ = nullptr;
        netIn_ = nullptr;
        netOut_ = nullptr;
    }
}

void TlsEngine::keylogCallback(const ssl_st* ssl, const char* line) {
    auto* self = static_cast<TlsEngine*>(SSL_get_app_data(ssl));
    if (!self || self->established_) {
        return;
    }
    std::string_view l(line);
    if (!self->records_) {
        if (l.rfind("CLIENT_TRAFFIC_SECRET_0 ", 0) != 0 && l.rfind("SERVER_TRAFFIC_SECRET_0 ", 0) != 0) {
            return;
        }
        self->records_ = std::make_unique<Tls13Records>();
    }
    auto& r = *self->records_;
    if (parseSecret(l, "CLIENT_TRAFFIC_SECRET_0", r.rx.secret)) {
        r.haveClientSecret = true;
    } else if (parseSecret(l, "SERVER_TRAFFIC_SECRET_0", r.tx.secret)) {
        r.haveServerSecret = true;
    }
}

TlsEngine::Result TlsEngine::feed(std::string_view ciphertext, std::string& out, Sink& sink) {
    if (compact_) {
        RecordSink rs(sink);
        return fromRecords(records_->open(ciphertext, out, rs));
    }
    if (!ssl_) {
        return Result::Failed;
    }
    BIO_write(netIn_, ciphertext.data(), static_cast<int>(ciphertext.size()));
    if (!established_) {
        return handshake(out, sink);
    }
    return readOpenSsl(out, sink);
}

TlsEngine::Result TlsEngine::handshake(std::string& out, Sink& sink) {
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) {
        int err = SSL_get_error(ssl_, r);
        drainOpenSsl(out);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            return Result::Ok;
        }
        char reason[160];
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        ERR_clear_error();
        error_ = std::string("TLS handshake failed: ") + reason;
        return Result::Failed;
    }
    established_ = true;
    drainOpenSsl(out);
    // Bytes the peer sent after its Finished are already under the
    // application keys: they go through whichever record layer runs now.
    std::string rest;
    if (tryCompact()) {
        char buf[kChunk];
        int n;
        while ((n = BIO_read(netIn_, buf, sizeof buf)) > 0) {
            rest.append(buf, static_cast<size_t>(n));
        }
        freeOpenSsl();
    }
    if (!sink.onHandshakeDone()) {
        return Result::Stopped;
    }
    if (compact_) {
        if (rest.empty()) {
            return Result::Ok;
        }
        RecordSink rs(sink);
        return fromRecords(records_->open(rest, out, rs));
    }
    return readOpenSsl(out, sink);
}

// The compact form needs TLS 1.3 with a suite we seal ourselves, both
// traffic secrets, and nothing buffered inside OpenSSL. With no session
// tickets (TlsContext) the server writes nothing under its application key
// during the handshake, and OpenSSL reads no further than the client's
// Finished, so both sequence numbers start at 0 (RFC 8446 §5.3).
bool TlsEngine::tryCompact() {
    if (!records_ || SSL_version(ssl_) != TLS1_3_VERSION || SSL_has_pending(ssl_)) {
        records_.reset();
        return false;
    }
    const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
    auto suite =
        cipher ? Tls13Records::suiteFromId(SSL_CIPHER_get_protocol_id(cipher)) : Tls13Records::Suite::None;
    static const char kLabel[] = "EXPORTER-Channel-Binding";
    records_->haveExporter =
        SSL_export_keying_material(ssl_, records_->exporter.data(), records_->exporter.size(), kLabel,
                                   sizeof kLabel - 1, nullptr, 0, 0) == 1;
    if (!records_->start(suite)) {
        records_.reset();
        return false;
    }
    compact_ = true;
    return true;
}

TlsEngine::Result TlsEngine::readOpenSsl(std::string& out, Sink& sink) {
    thread_local char plain[kChunk];
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(ssl_, plain, sizeof plain);
        if (n > 0) {
            if (!sink.onPlaintext(std::string_view(plain, static_cast<size_t>(n)))) {
                return Result::Stopped;
            }
            continue;
        }
        int err = SSL_get_error(ssl_, n);
        drainOpenSsl(out);
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
            return Result::Ok;
        }
        ERR_clear_error();
        if (err == SSL_ERROR_ZERO_RETURN) {
            return Result::PeerClosed;
        }
        error_ = "TLS read failed";
        return Result::Failed;
    }
}

bool TlsEngine::write(std::string_view plaintext, std::string& out) {
    if (compact_) {
        return records_->seal(plaintext, out);
    }
    if (!ssl_ || !established_) {
        return false;
    }
    ERR_clear_error();
    if (!plaintext.empty() && SSL_write(ssl_, plaintext.data(), static_cast<int>(plaintext.size())) <= 0) {
        ERR_clear_error();
        error_ = "TLS write failed";
        return false;
    }
    drainOpenSsl(out);
    return true;
}

void TlsEngine::close(std::string& out) {
    if (compact_) {
        records_->alert(0, out);
        return;
    }
    if (ssl_ && established_) {
        SSL_shutdown(ssl_);  // close_notify; we do not wait for the peer's
        drainOpenSsl(out);
        ERR_clear_error();
    }
}

void TlsEngine::drainOpenSsl(std::string& out) {
    char buf[4096];
    while (BIO_ctrl_pending(netOut_) > 0) {
        int n = BIO_read(netOut_, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<size_t>(n));
    }
}

const std::string& TlsEngine::error() const {
    return compact_ ? records_->error : error_;
}

std::string_view TlsEngine::version() const {
    if (!established_) {
        return {};
    }
    return compact_ ? std::string_view("TLSv1.3") : std::string_view(SSL_get_version(ssl_));
}

std::string TlsEngine::channelBinding(std::string_view type) const {
    if (!established_) {
        return {};
    }
    if (type == "tls-server-end-point") {
        return context_.serverEndPoint();
    }
    if (type != "tls-exporter") {
        return {};
    }
    // RFC 9266: defined for TLS 1.3 only.
    if (compact_) {
        return records_->haveExporter ? std::string(reinterpret_cast<const char*>(records_->exporter.data()),
                                                    records_->exporter.size())
                                      : std::string();
    }
    if (!ssl_ || SSL_version(ssl_) != TLS1_3_VERSION) {
        return {};
    }
    unsigned char value[32];
    static const char kLabel[] = "EXPORTER-Channel-Binding";
    if (SSL_export_keying_material(ssl_, value, sizeof value, kLabel, sizeof kLabel - 1, nullptr, 0, 0) !=
        1) {
        return {};
    }
    return std::string(reinterpret_cast<char*>(value), sizeof value);
}

void TlsEngine::trim() {
    if (compact_) {
        records_->trim();
        return;
    }
    // Memory BIOs keep their largest buffer (the handshake's) forever; swap
    // empty ones for fresh ones. SSL_set_bio frees the old pair.
    if (ssl_ && established_ && BIO_ctrl_pending(netIn_) == 0 && BIO_ctrl_pending(netOut_) == 0) {
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
}

}  // namespace xmppd
