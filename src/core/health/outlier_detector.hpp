#pragma once
// Passive outlier detection and the circuit breaker of each upstream, as one state machine over
// real traffic (Envoy's outlier detection, with Hystrix's half-open step):
//
//   closed ──(too many failures)──▶ open ──(ejection time over)──▶ half_open
//     ▲                                ▲                               │
//     └──────(every trial succeeded)───┼───────────(a trial failed)────┘
//
// An upstream is ejected (opened) when, since it was last closed,
//   - `consecutive_gateway_failures` attempts in a row failed at the gateway level (502/503/504
//     and other retried statuses, resets, timeouts, malformed answers, mid-stream breaks and
//     stalls), or
//   - `consecutive_connect_failures` connection attempts in a row failed (refused, timed out,
//     TLS), counted apart because they say something else (the host or port is gone), or
//   - its failure rate over the last `interval` reached `failure_rate_threshold`, with at least
//     `failure_rate_min_requests` attempts in that interval.
// It stays open for base_ejection × (number of ejections so far), at most max_ejection; then it is
// half-open: up to `half_open_trials` requests are let through; if all succeed it is closed again,
// if one fails it is opened again, for longer. The number of ejections decays to zero after the
// upstream has stayed closed for max_ejection. At most `max_ejection_percent` of the upstreams
// are ejected at once, and never the last one that is not.
//
// Pure: the gateway's health monitor feeds it the outcomes counted by the workers at every tick,
// with the time; what it decides is published to the workers as a snapshot.

#include <chrono>
#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

struct outlier_settings {
  bool enabled = true;  // off: every breaker stays closed
  unsigned consecutive_gateway_failures = 5;
  unsigned consecutive_connect_failures = 5;
  double failure_rate_threshold = 0.5;
  unsigned failure_rate_min_requests = 20;
  std::chrono::milliseconds interval{10000};
  std::chrono::milliseconds base_ejection{10000};
  std::chrono::milliseconds max_ejection{300000};
  double max_ejection_percent = 0.5;
  unsigned half_open_trials = 3;
};

enum class breaker_state { closed, open, half_open };
std::string_view to_string(breaker_state state);

// What real traffic to one upstream did since the previous tick (the counts), and where its
// consecutive counters stand now.
struct traffic_report {
  std::uint64_t successes = 0;
  std::uint64_t gateway_failures = 0;
  std::uint64_t connect_failures = 0;
  unsigned consecutive_gateway_failures = 0;
  unsigned consecutive_connect_failures = 0;
  std::uint64_t trial_successes = 0;  // half-open trials that ended since the previous tick
  std::uint64_t trial_failures = 0;
};

class outlier_detector {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  outlier_detector(outlier_settings settings, std::size_t upstreams);

  // One tick with the traffic of every upstream (index-aligned) since the previous one.
  void tick(std::span<const traffic_report> traffic, time_point now);

  breaker_state state(std::size_t i) const { return entries_[i].state; }
  time_point open_until(std::size_t i) const { return entries_[i].open_until; }
  unsigned ejections(std::size_t i) const { return entries_[i].ejections; }
  std::uint64_t ejections_total(std::size_t i) const { return entries_[i].ejections_total; }
  const std::string& last_reason(std::size_t i) const { return entries_[i].reason; }
  // Failed attempts / attempts over the interval (0 with no attempts).
  double failure_rate(std::size_t i) const;
  // Attempts over the interval.
  std::uint64_t window_attempts(std::size_t i) const;
  std::size_t ejected() const;  // open or half-open
  const outlier_settings& settings() const { return settings_; }

 private:
  struct bucket {
    time_point at;
    std::uint64_t successes = 0;
    std::uint64_t failures = 0;
  };
  struct entry {
    breaker_state state = breaker_state::closed;
    time_point open_until{};
    time_point closed_since{};
    unsigned ejections = 0;            // the multiplier of the ejection time
    std::uint64_t ejections_total = 0;
    std::uint64_t trial_successes = 0;  // in this half-open period
    std::deque<bucket> window;
    std::string reason;
  };
  // Why `i` should be ejected now, or empty.
  std::string ejection_reason(const entry& e, const traffic_report& t) const;
  bool may_eject() const;
  void open(entry& e, time_point now, std::string reason);

  outlier_settings settings_;
  std::vector<entry> entries_;
};

// Active health: a probed upstream turns unhealthy after `unhealthy_threshold` failed probes in a
// row and healthy again after `healthy_threshold` successful ones.
struct active_health_settings {
  unsigned healthy_threshold = 2;
  unsigned unhealthy_threshold = 3;
};
bool next_active_health(bool healthy, unsigned consecutive_successes,
                        unsigned consecutive_failures, const active_health_settings& settings);

}  // namespace nines::core
