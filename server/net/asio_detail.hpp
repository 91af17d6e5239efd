#pragma once
// Internal to server/net: included only by io_runtime.cpp and tcp_transport.cpp.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>

#include "server/net/transport.hpp"

namespace xmppd {
class TlsContext;

std::shared_ptr<Transport> makeTcpTransport(boost::asio::ip::tcp::socket socket, TlsContext* tls,
                                            bool directTls, size_t maxOutboundBytes);
}  // namespace xmppd
