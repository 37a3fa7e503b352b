#pragma once
// Debian's redis-server and redis-sentinel started by a test, on loopback addresses of the test's
// own (127.78.X.Y) and Redis's usual ports (6379, 26379), outside the ephemeral range: no other
// test's socket can take them, and a topology that fails over keeps its addresses. No
// persistence; each node's files in a directory of its own. Stopped (SIGKILL) with the test.

#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace nines::test {

struct redis_node {
  std::unique_ptr<process> proc;
  std::string host;
  unsigned short port = 0;
};

// redis-server on host:6379, once it accepts connections. `extra`: more `--option value` words
// (`--requirepass`, `--replicaof`, ...).
redis_node start_redis(const std::string& host, std::vector<std::string> extra = {});

// redis-sentinel on host:26379 watching `master_name` at primary, with quorum 2, a primary
// judged down after 1 s and a failover timeout of 5 s, once it monitors it.
redis_node start_sentinel(const std::string& host, const std::string& master_name,
                          const redis_node& primary);

// A primary, two replicas in sync with it and three Sentinels, on 127.78.`net`.1-3 and .11-13.
struct redis_topology {
  redis_node primary;
  std::vector<redis_node> replicas;
  std::vector<redis_node> sentinels;
};
redis_topology start_redis_topology(int net, const std::string& master_name);

}  // namespace nines::test
