#pragma once
// Two connected TCP sockets over 127.0.0.1 on one io_context, for tests of what a worker does with
// a connection (deadlines, departure watches) without a server around it.

#include "net/asio.hpp"

namespace nines::net::test {

struct loopback_pair {
  tcp::socket server;
  tcp::socket client;
  explicit loopback_pair(asio::io_context& ioc) : server(ioc), client(ioc) {
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

}  // namespace nines::net::test
