#pragma once
// `nines probe TARGET...`: a command-line network-quality monitor. It probes each target `count`
// times, `interval` apart — a TCP connect (tcp://host:port or host:port) or an HTTP GET over a
// kept-alive connection (http://host:port/path) — and prints RTT (moving average, p99, min),
// loss and jitter, each rated against the thresholds (core/health/link_quality.hpp: RTT normal below
// 100 ms, alert above 300 ms; loss alert above 1%; jitter normal below 30 ms, alert above 80 ms).
// Exit code 0 when nothing is at alert level, 1 when something is, 2 on bad usage.

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace nines::tools {

struct probe_options {
  std::vector<std::string> targets;
  unsigned count = 10;
  unsigned interval_ms = 200;
  unsigned timeout_ms = 1000;
  unsigned rtt_normal_ms = 100;
  unsigned rtt_alert_ms = 300;
  double loss_alert_percent = 1;
  unsigned jitter_normal_ms = 30;
  unsigned jitter_alert_ms = 80;
  bool json = false;
};

void add_probe_options(CLI::App& app, probe_options& options);
int run_probe(const probe_options& options);

}  // namespace nines::tools
