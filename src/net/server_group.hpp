#pragma once
// Thread per core for a server role: N workers, each an io_context on its own thread with its own
// acceptor on the same port (SO_REUSEPORT lets the kernel spread connections), so that nothing
// mutable is shared between connections of different workers. A port that another process
// already listens on is refused (bind() throws), never silently shared with it.
//
// Connections are capped (server_limits::max_connections for all workers together, and
// max_connections_per_worker for each): one over the cap is answered at once with a 503 JSON error
// and closed, never left to hang in the listen queue. Accept failures (EMFILE, ...) are counted
// and logged at most once a second.
//
// Lifecycle: bind() (may throw: startup), start(), then run() blocks until every worker is done.
// begin_drain() (any thread) stops accepting and closes idle keep-alive connections; in-flight
// requests finish and the workers' run() returns by itself. stop() ends everything at once.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "net/http_server.hpp"

namespace nines::net {

class server_group {
 public:
  server_group(std::string host, std::uint16_t port, unsigned workers, server_limits limits);
  ~server_group();

  // Opens the acceptors. Returns the bound port (useful when `port` was 0). Throws on failure.
  std::uint16_t bind();

  unsigned size() const { return static_cast<unsigned>(workers_.size()); }
  asio::io_context& context(unsigned worker);

  // Starts accepting on worker `worker`; its connections are served by `handler`.
  void start(unsigned worker, request_handler handler);

  // Runs all workers on their own threads and returns when all have finished.
  void run();

  void begin_drain();
  void stop();

  // Counts for metrics, readable from any thread.
  struct counts {
    unsigned open = 0;              // client connections now
    std::uint64_t refused = 0;      // over a connection cap
    std::uint64_t accept_errors = 0;
  };
  counts read_counts() const;

 private:
  struct worker;
  struct shared_counts;
  std::shared_ptr<shared_counts> counts_;
  std::string host_;
  std::uint16_t port_;
  server_limits limits_;
  std::vector<std::unique_ptr<worker>> workers_;
};

}  // namespace nines::net
