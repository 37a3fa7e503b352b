#include "redis_harness.hpp"

#include <sys/stat.h>

#include <fstream>
#include <stdexcept>

namespace nines::test {

namespace {

std::string node_dir() {
  const auto dir = temp_path("-redis");
  ::mkdir(dir.c_str(), 0700);
  return dir;
}

}  // namespace

redis_node start_redis(const std::string& host, std::vector<std::string> extra) {
  std::vector<std::string> argv{"/usr/bin/redis-server", "--bind", host, "--port", "6379", "--save",
                                "", "--appendonly", "no", "--dir", node_dir(),
                                // Replicas and Sentinels are told this node's own address, not
                                // the 127.0.0.1 its connections come from.
                                "--replica-announce-ip", host, "--bind-source-addr", host,
                                // Protected mode admits 127.0.0.1 only; these addresses are
                                // the test's own on loopback.
                                "--protected-mode", "no", "--loglevel", "notice"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  redis_node n;
  n.proc = std::make_unique<process>(argv);
  n.host = host;
  n.port = 6379;
  if (!n.proc->wait_for_output("Ready to accept connections", std::chrono::milliseconds(20000))) {
    throw std::runtime_error("redis-server on " + host + " did not start: " + n.proc->output());
  }
  return n;
}

redis_node start_sentinel(const std::string& host, const std::string& master_name,
                          const redis_node& primary) {
  const auto dir = node_dir();
  const auto conf = dir + "/sentinel.conf";
  std::ofstream(conf) << "bind " << host << "\nport 26379\nprotected-mode no\ndir " << dir << "\nsentinel announce-ip "
                      << host << "\nbind-source-addr " << host << "\nsentinel monitor "
                      << master_name << " " << primary.host << " " << primary.port
                      << " 2\nsentinel down-after-milliseconds " << master_name
                      << " 1000\nsentinel failover-timeout " << master_name
                      << " 5000\nsentinel parallel-syncs " << master_name << " 1\n";
  redis_node n;
  n.proc = std::make_unique<process>(std::vector<std::string>{"/usr/bin/redis-sentinel", conf});
  n.host = host;
  n.port = 26379;
  if (!n.proc->wait_for_output("+monitor master " + master_name,
                               std::chrono::milliseconds(20000))) {
    throw std::runtime_error("redis-sentinel on " + host + " did not start: " + n.proc->output());
  }
  return n;
}

redis_topology start_redis_topology(int net, const std::string& master_name) {
  const std::string base = "127.78." + std::to_string(net) + ".";
  redis_topology t;
  t.primary = start_redis(base + "1");
  for (const char* last : {"2", "3"}) {
    t.replicas.push_back(start_redis(base + last, {"--replicaof", base + "1", "6379"}));
  }
  for (auto& r : t.replicas) {
    if (!r.proc->wait_for_output("MASTER <-> REPLICA sync: Finished with success",
                                 std::chrono::milliseconds(20000))) {
      throw std::runtime_error("a replica did not sync: " + r.proc->output());
    }
  }
  for (const char* last : {"11", "12", "13"}) {
    t.sentinels.push_back(start_sentinel(base + last, master_name, t.primary));
  }
  return t;
}

}  // namespace nines::test
