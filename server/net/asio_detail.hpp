#pragma once
// Internal to server/net: included only by io_runtime.cpp, tcp_transport.cpp
// and http_listener.cpp.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "server/net/transport.hpp"

namespace xmppd {
class TlsContext;

struct AcceptedSocket {
    boost::asio::ip::tcp::socket socket;
};

std::shared_ptr<Transport> makeTcpTransport(boost::asio::ip::tcp::socket socket, TlsContext* tls,
                                            bool directTls, size_t maxOutboundBytes);
}  // namespace xmppd
