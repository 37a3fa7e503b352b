#pragma once
// The health monitor: the one place that decides how healthy each upstream is and which tier takes
// the traffic. It runs on the gateway's control thread, apart from the workers.
//
//   - Active probes: every `health.interval_ms` (± jitter) it sends `GET <health path>` to each
//     upstream over a kept-alive connection and records the round trip (core/link_quality: RTT
//     EWMA and p99, loss, jitter); `healthy_threshold` / `unhealthy_threshold` probes in a row
//     change an upstream's active health.
//   - Passive outlier detection and the circuit breaker (core/outlier_detector): every tick
//     (100 ms) it collects what the workers' attempts counted in upstream_live.
//   - Health scores (core/health_score), the tier in use with hysteresis (core/tier_selector) and
//     panic per tier.
// It publishes the result as immutable snapshots in the current generation: a routing snapshot
// that every request reads for its selection, and a health report for GET /status. It also keeps
// the per-upstream gauges and counters of /metrics.
//
// A reload gives it a new generation: it keeps the probe history of upstreams that did not change
// and starts their breakers and the tier choice afresh.

#include <memory>
#include <vector>

#include <deque>

#include "core/obs/alert_rules.hpp"
#include "core/health/link_quality.hpp"
#include "core/obs/sla_history.hpp"
#include "gateway/alert_notifier.hpp"
#include "gateway/sla.hpp"
#include "core/health/outlier_detector.hpp"
#include "core/routing/tier_selector.hpp"
#include "gateway/worker.hpp"
#include "net/asio.hpp"

namespace nines::gateway {

class upstream_monitor {
 public:
  // `external_url` is the gateway's own base URL, for links in alert notifications.
  upstream_monitor(net::asio::io_context& context, std::shared_ptr<shared_state> shared,
                   std::string external_url);
  ~upstream_monitor();

  // Starts probing and ticking for the current generation.
  void start();
  // Takes over a new generation (after a reload). Call on the monitor's thread.
  void adopt(std::shared_ptr<generation> next);
  // Stops everything (the gateway is shutting down). Call on the monitor's thread.
  void stop();

 private:
  struct upstream_state;
  net::awaitable<void> probe_loop(std::shared_ptr<upstream_state> state, std::uint64_t epoch);
  net::awaitable<void> tick_loop(std::uint64_t epoch);
  void tick(std::chrono::steady_clock::time_point now);
  std::size_t index_of(const upstream_state& s) const;
  void note(std::string kind, std::string upstream, std::string message);
  void collect_sla(std::chrono::steady_clock::time_point now,
                   const std::vector<core::traffic_report>& traffic);
  void evaluate_alerts(std::chrono::steady_clock::time_point now,
                       const routing_snapshot& routing);
  void publish_dashboard(std::chrono::steady_clock::time_point now);

  net::asio::io_context& context_;
  std::shared_ptr<shared_state> shared_;
  std::shared_ptr<generation> gen_;
  std::vector<std::shared_ptr<upstream_state>> upstreams_;  // index-aligned with gen_'s
  std::unique_ptr<core::outlier_detector> detector_;
  std::unique_ptr<core::tier_selector> tiers_;
  std::vector<int> priorities_;  // distinct, best first
  std::uint64_t epoch_ = 0;      // loops of an older epoch stop
  std::uint64_t switches_before_ = 0;  // tier switches of previous generations
  bool stopped_ = false;
  std::unique_ptr<net::asio::steady_timer> tick_timer_;
  std::string external_url_;
  // The SLA: what clients saw (24 h), the recent incidents, the built-in alerts.
  core::sla_history history_;
  std::deque<incident> incidents_;
  std::unique_ptr<core::alert_evaluator> alerts_;
  std::unique_ptr<alert_notifier> notifier_;
  std::chrono::steady_clock::time_point next_evaluation_{};
  std::chrono::steady_clock::time_point next_report_{};
  bool report_due_ = false;  // an incident since the last report
  std::uint64_t resumes_seen_ = 0;
};

}  // namespace nines::gateway
