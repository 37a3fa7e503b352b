#pragma once
// Thread per core for a server role: N workers, each an io_context on its own thread with its own
// acceptor on each listener's port (SO_REUSEPORT lets the kernel spread connections), so that nothing
// mutable is shared between connections of different workers. A port that another process
// already listens on is refused (bind() throws), never silently shared with it.
//
// A listener may speak TLS (a tls_server_store: the identity new connections shake hands with,
// swapped on reload); the handshake happens on the worker, within server_limits::handshake_timeout,
// and its failures are counted by reason and logged at most once a second.
//
// Connections are capped (server_limits::max_connections for all workers together, and
// max_connections_per_worker for each): one over the cap is answered at once with a 503 JSON error
// and closed (on a TLS listener only closed: a
// TLS client cannot read a plain answer), never left to hang in the listen queue. Accept failures (EMFILE, ...) are counted
// and logged at most once a second.
//
// Lifecycle: bind() (may throw: startup), start(), then run() blocks until every worker is done.
// begin_drain() (any thread) stops accepting and closes idle keep-alive connections; in-flight
// requests finish and the workers' run() returns by itself. stop() ends everything at once.

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http_server.hpp"
#include "net/tls_server_identity.hpp"

namespace nines::net {

// The CPUs this process may run on: its affinity mask (a container's cpuset, `taskset`), not the
// machine's core count; at least 1. The default number of workers.
unsigned usable_cpus();

struct listener_spec {
  std::string host;
  std::uint16_t port = 0;
  std::shared_ptr<tls_server_store> tls;  // null: plain HTTP
};

// The reasons a TLS handshake fails (tls_handshake_failure::reason), in the order counted.
inline constexpr std::array<std::string_view, 9> tls_failure_reasons{
    "protocol_version",        "no_shared_cipher", "no_application_protocol",
    "client_certificate_missing", "client_certificate_rejected", "plain_http",
    "timeout",                 "closed",           "other"};

class server_group {
 public:
  server_group(std::vector<listener_spec> listeners, unsigned workers, server_limits limits);
  // One plain listener.
  server_group(std::string host, std::uint16_t port, unsigned workers, server_limits limits);
  ~server_group();

  // Opens the acceptors. Returns the bound port of each listener, in order (useful when a port was
  // 0). Throws on failure.
  std::vector<std::uint16_t> bind_all();
  // bind_all() for a group of one listener: its port.
  std::uint16_t bind() { return bind_all().front(); }

  unsigned size() const { return static_cast<unsigned>(workers_.size()); }
  asio::io_context& context(unsigned worker);

  // Starts accepting on worker `worker`; its connections are served by `handler`.
  void start(unsigned worker, request_handler handler);

  // Runs all workers on their own threads and returns when all have finished.
  void run();

  void begin_drain();
  void stop();
  // After run() returned, and before what their handlers reference goes (the workers' state):
  // destroys every handler and coroutine the event loops still hold (requests a drain cut,
  // journaled generations that outlive their clients). The loops run nothing afterwards; I/O
  // objects bound to them may still be destroyed.
  void close_workers();

  // Counts for metrics, readable from any thread.
  struct counts {
    unsigned open = 0;              // client connections now
    std::uint64_t refused = 0;      // over a connection cap
    std::uint64_t accept_errors = 0;
    std::uint64_t tls_handshakes = 0;                                   // completed
    std::array<std::uint64_t, tls_failure_reasons.size()> tls_failures{};  // by reason
  };
  counts read_counts() const;

 private:
  struct worker;
  struct shared_counts;
  std::shared_ptr<shared_counts> counts_;
  std::vector<listener_spec> listeners_;
  server_limits limits_;
  std::vector<std::unique_ptr<worker>> workers_;
};

}  // namespace nines::net
