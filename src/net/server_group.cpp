#include "net/server_group.hpp"

#include <sched.h>
#include <thread>

#include <array>

#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>

#include "net/spawn.hpp"

namespace nines::net {

unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
  return std::max(1U, std::thread::hardware_concurrency());
}

struct server_group::shared_counts {
  std::atomic<unsigned> open{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> accept_errors{0};
  std::atomic<std::uint64_t> tls_handshakes{0};
  std::array<std::atomic<std::uint64_t>, tls_failure_reasons.size()> tls_failures{};
  std::atomic<std::int64_t> last_warning{0};  // steady clock, ns: warnings at most once a second
  std::atomic<std::uint64_t> unwarned{0};     // events since the last warning
  std::atomic<std::int64_t> last_tls_warning{0};  // the same for handshake failures
  std::atomic<std::uint64_t> tls_unwarned{0};
};

namespace {

// An event loop whose services can be shut down before it is destroyed: its pending handlers and
// coroutines are destroyed then, while what they refer to still lives, and I/O objects owned
// elsewhere may still be destroyed afterwards (they find their service shut down, as Asio means).
struct closable_context : asio::io_context {
  using asio::io_context::io_context;
  void close() { shutdown(); }
};

}  // namespace

struct server_group::worker {
  closable_context context{1};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // one per listener
  idle_connections idle;
  unsigned open = 0;      // this worker's client connections
  unsigned refusing = 0;  // over-capacity answers being written
};

server_group::server_group(std::vector<listener_spec> listeners, unsigned workers,
                           server_limits limits)
    : counts_(std::make_shared<shared_counts>()), listeners_(std::move(listeners)),
      limits_(limits) {
  for (unsigned i = 0; i < std::max(workers, 1U); ++i) {
    auto w = std::make_unique<worker>();
    for (std::size_t l = 0; l < listeners_.size(); ++l) {
      w->acceptors.push_back(std::make_unique<tcp::acceptor>(w->context));
    }
    workers_.push_back(std::move(w));
  }
}

server_group::server_group(std::string host, std::uint16_t port, unsigned workers,
                           server_limits limits)
    : server_group(std::vector<listener_spec>{listener_spec{std::move(host), port, nullptr}},
                   workers, limits) {}

server_group::~server_group() = default;

asio::io_context& server_group::context(unsigned worker) { return workers_.at(worker)->context; }

std::vector<std::uint16_t> server_group::bind_all() {
  std::vector<std::uint16_t> ports;
  for (std::size_t l = 0; l < listeners_.size(); ++l) {
    auto& spec = listeners_[l];
    error_code ec;
    auto address = asio::ip::make_address(spec.host, ec);
    if (ec) {
      throw std::runtime_error("listen address \"" + spec.host + "\" is not an IP address");
    }
    std::uint16_t port = spec.port;
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
        throw std::runtime_error(
            "cannot listen on " + spec.host + ":" + std::to_string(port) + ": " + ec.message() +
            (ec == asio::error::address_in_use ? " (another process listens there)" : ""));
      }
    }
    for (auto& w : workers_) {
      auto& acceptor = *w->acceptors[l];
      tcp::endpoint endpoint(address, port);
      acceptor.open(endpoint.protocol());
      acceptor.set_option(tcp::acceptor::reuse_address(true));
      int one = 1;
      ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
      acceptor.bind(endpoint, ec);
      if (ec) {
        throw std::runtime_error("cannot listen on " + spec.host + ":" + std::to_string(port) +
                                 ": " + ec.message());
      }
      acceptor.listen(asio::socket_base::max_listen_connections);
      port = acceptor.local_endpoint().port();  // every later worker shares the first's port
    }
    spec.port = port;
    ports.push_back(port);
  }
  return ports;
}

namespace {

using steady = std::chrono::steady_clock;

// Over-capacity answers written at once per worker; past this, a connection is closed unanswered.
constexpr unsigned max_refusals_in_flight = 64;

// Logs `message` unless another warning of this group was logged less than a second ago; says how
// many events went unlogged meanwhile.
void warn_at_most_every_second(std::atomic<std::int64_t>& last_warning,
                               std::atomic<std::uint64_t>& unwarned, const std::string& message) {
  const auto now = steady::now().time_since_epoch().count();
  auto last = last_warning.load(std::memory_order_relaxed);
  if (now - last < 1'000'000'000 ||
      !last_warning.compare_exchange_strong(last, now, std::memory_order_relaxed)) {
    unwarned.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const auto skipped = unwarned.exchange(0, std::memory_order_relaxed);
  if (skipped > 0) {
    spdlog::warn("{} ({} more like it in the last second)", message, skipped);
  } else {
    spdlog::warn("{}", message);
  }
}

// A 503 to a connection over the cap, before anything is read, then a short lingering close (so
// that our close does not reset the answer away while the client is still sending).
awaitable<void> refuse_connection(tcp::socket socket, unsigned& refusing) {
  auto t = make_tcp_transport(std::move(socket));
  const auto wire = over_capacity_response();
  const std::array<asio::const_buffer, 1> buffers{asio::buffer(wire.data(), wire.size())};
  auto [ec, n] = co_await t->write(buffers, std::chrono::milliseconds(1000));
  if (!ec) {
    const auto until = steady::now() + std::chrono::milliseconds(500);
    co_await t->end_sending(until);
    char sink[4096];
    for (std::size_t discarded = 0; discarded < (64u << 10);) {
      auto [rec, rn] = co_await t->read_some(asio::buffer(sink), until);
      if (rec) {
        break;
      }
      discarded += rn;
    }
  }
  t->abort(false);
  --refusing;
}

template <class Counts>
void count_tls_failure(Counts& counts, const tls_handshake_failure& failure,
                       const std::string& peer) {
  for (std::size_t i = 0; i < tls_failure_reasons.size(); ++i) {
    if (tls_failure_reasons[i] == failure.reason) {
      counts.tls_failures[i].fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (failure.reason == "closed") {
    return;  // a client that left during the handshake (port scanners, health checks)
  }
  warn_at_most_every_second(counts.last_tls_warning, counts.tls_unwarned,
                            fmt::format("TLS handshake with {} failed: {} ({})", peer,
                                        failure.reason, failure.detail));
}

template <class Worker, class Counts>
awaitable<void> serve_counted(tcp::socket socket, request_handler handler, server_limits limits,
                              Worker& w, std::shared_ptr<Counts> counts,
                              std::shared_ptr<tls_server_store> tls) {
  std::unique_ptr<client_transport> transport;
  if (tls) {
    error_code ignored;
    const auto peer = socket.remote_endpoint(ignored);
    tls_handshake_failure failure;
    auto identity = tls->current();  // this connection keeps it, whatever reloads meanwhile
    const auto deadline = steady::now() + limits.handshake_timeout;
    transport = co_await accept_tls(std::move(socket), std::move(identity), deadline, failure);
    if (transport) {
      counts->tls_handshakes.fetch_add(1, std::memory_order_relaxed);
    } else {
      count_tls_failure(*counts, failure, peer.address().to_string());
    }
  } else {
    transport = make_tcp_transport(std::move(socket));
  }
  if (transport) {
    co_await serve_connection(std::move(transport), std::move(handler), limits, w.idle);
  }
  --w.open;
  counts->open.fetch_sub(1, std::memory_order_relaxed);
}

template <class Worker, class Counts>
awaitable<void> accept_loop(Worker& w, tcp::acceptor& acceptor,
                            std::shared_ptr<tls_server_store> tls, request_handler handler,
                            server_limits limits, std::shared_ptr<Counts> counts) {
  for (;;) {
    // The socket is a named variable of the loop, not part of a tuple the co_await returns: GCC 12
    // mishandles non-trivial temporaries held across a later co_await (docs/architecture.md), and
    // this loop co_awaits again after an accept failure.
    tcp::socket socket(acceptor.get_executor());
    auto [ec] = co_await acceptor.async_accept(socket, use_nothrow);
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
        !acceptor.is_open()) {
      co_return;
    }
    if (ec) {
      // EMFILE and friends: back off briefly instead of spinning.
      counts->accept_errors.fetch_add(1, std::memory_order_relaxed);
      warn_at_most_every_second(counts->last_warning, counts->unwarned,
                                "accept failed: " + ec.message());
      co_await sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    const unsigned before = counts->open.fetch_add(1, std::memory_order_relaxed);
    const bool over_all = limits.max_connections > 0 && before >= limits.max_connections;
    const bool over_worker =
        limits.max_connections_per_worker > 0 && w.open >= limits.max_connections_per_worker;
    if (over_all || over_worker) {
      counts->open.fetch_sub(1, std::memory_order_relaxed);
      counts->refused.fetch_add(1, std::memory_order_relaxed);
      warn_at_most_every_second(
          counts->last_warning, counts->unwarned, over_all ? fmt::format("connection refused: {} client connections open, the "
                                          "limit (limits.max_client_connections)",
                                          limits.max_connections)
                            : fmt::format("connection refused: this worker has {} client "
                                          "connections, its limit "
                                          "(limits.max_client_connections_per_worker)",
                                          limits.max_connections_per_worker));
      if (!tls && w.refusing < max_refusals_in_flight) {
        ++w.refusing;
        spawn(acceptor.get_executor(), refuse_connection(std::move(socket), w.refusing),
              "over-capacity answer");
      } else {
        error_code ignored;
        socket.close(ignored);
      }
      continue;
    }
    ++w.open;
    spawn(acceptor.get_executor(),
          serve_counted(std::move(socket), handler, limits, w, counts, tls), "client connection");
  }
}

}  // namespace

server_group::counts server_group::read_counts() const {
  counts c{counts_->open.load(std::memory_order_relaxed),
           counts_->refused.load(std::memory_order_relaxed),
           counts_->accept_errors.load(std::memory_order_relaxed),
           counts_->tls_handshakes.load(std::memory_order_relaxed),
           {}};
  for (std::size_t i = 0; i < c.tls_failures.size(); ++i) {
    c.tls_failures[i] = counts_->tls_failures[i].load(std::memory_order_relaxed);
  }
  return c;
}

void server_group::start(unsigned index, request_handler handler) {
  auto& w = *workers_.at(index);
  for (std::size_t l = 0; l < listeners_.size(); ++l) {
    spawn(w.context.get_executor(),
          accept_loop(w, *w.acceptors[l], listeners_[l].tls, handler, limits_, counts_),
          "accept loop");
  }
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
      for (auto& a : wk.acceptors) {
        a->close(ignored);
      }
      wk.idle.begin_drain();
    });
  }
}

void server_group::close_workers() {
  for (auto& w : workers_) {
    w->context.close();
  }
}

void server_group::stop() {
  for (auto& w : workers_) {
    w->context.stop();
  }
}

}  // namespace nines::net
