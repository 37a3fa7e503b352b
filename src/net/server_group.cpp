#include "net/server_group.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>

namespace nines::net {

struct server_group::worker {
  asio::io_context context{1};
  tcp::acceptor acceptor{context};
  idle_connections idle;
};

server_group::server_group(std::string host, std::uint16_t port, unsigned workers,
                           server_limits limits)
    : host_(std::move(host)), port_(port), limits_(limits) {
  for (unsigned i = 0; i < std::max(workers, 1U); ++i) {
    workers_.push_back(std::make_unique<worker>());
  }
}

server_group::~server_group() = default;

asio::io_context& server_group::context(unsigned worker) { return workers_.at(worker)->context; }

std::uint16_t server_group::bind() {
  error_code ec;
  auto address = asio::ip::make_address(host_, ec);
  if (ec) {
    throw std::runtime_error("listen address \"" + host_ + "\" is not an IP address");
  }
  std::uint16_t port = port_;
  if (port != 0) {
    // SO_REUSEPORT would let us join a socket another process already listens on (the kernel
    // would then split the connections between us, silently): first a bind without it, which
    // fails when anyone listens on the port.
    tcp::acceptor probe(workers_.front()->context);
    tcp::endpoint endpoint(address, port);
    probe.open(endpoint.protocol());
    probe.set_option(tcp::acceptor::reuse_address(true));  // TIME_WAIT leftovers are no owner
    probe.bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + host_ + ":" + std::to_string(port) + ": " +
                               ec.message() +
                               (ec == asio::error::address_in_use ? " (another process listens there)"
                                                                   : ""));
    }
  }
  for (auto& w : workers_) {
    tcp::endpoint endpoint(address, port);
    w->acceptor.open(endpoint.protocol());
    w->acceptor.set_option(tcp::acceptor::reuse_address(true));
    int one = 1;
    ::setsockopt(w->acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    w->acceptor.bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + host_ + ":" + std::to_string(port) + ": " +
                               ec.message());
    }
    w->acceptor.listen(asio::socket_base::max_listen_connections);
    port = w->acceptor.local_endpoint().port();  // every later worker shares the first's port
  }
  port_ = port;
  return port;
}

namespace {

awaitable<void> accept_loop(tcp::acceptor& acceptor, request_handler handler,
                            server_limits limits, idle_connections& idle) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
        !acceptor.is_open()) {
      co_return;
    }
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      spdlog::warn("accept failed: {}", ec.message());
      co_await sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    asio::co_spawn(acceptor.get_executor(),
                   serve_connection(std::move(socket), handler, limits, idle), asio::detached);
  }
}

}  // namespace

void server_group::start(unsigned index, request_handler handler) {
  auto& w = *workers_.at(index);
  asio::co_spawn(w.context, accept_loop(w.acceptor, std::move(handler), limits_, w.idle),
                 asio::detached);
}

void server_group::run() {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([this, i] { workers_[i]->context.run(); });
  }
  workers_[0]->context.run();
  for (auto& t : threads) {
    t.join();
  }
}

void server_group::begin_drain() {
  for (auto& w : workers_) {
    asio::post(w->context, [&wk = *w] {
      error_code ignored;
      wk.acceptor.close(ignored);
      wk.idle.begin_drain();
    });
  }
}

void server_group::stop() {
  for (auto& w : workers_) {
    w->context.stop();
  }
}

}  // namespace nines::net
