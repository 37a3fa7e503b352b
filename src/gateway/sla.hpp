#pragma once
// What clients saw, for the SLA dashboard, /status and the built-in alerts.
//
// Workers count every answered request in their own `sla_shard` (good: answered completely,
// client errors passed through included; bad: every attempt failed, or a stream ended
// incomplete; requests refused for bad input, and clients that left, do not count) with its time
// to first byte. The health monitor collects the shards into the SLA history
// (core/obs/sla_history.hpp) every tick, evaluates the alert rules, keeps the recent incidents, and
// publishes a `dashboard_report` snapshot that /status serves.

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/obs/alert_rules.hpp"
#include "core/obs/sla_history.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

struct alignas(64) sla_shard {
  std::atomic<std::uint64_t> good{0};
  std::atomic<std::uint64_t> bad{0};
  std::array<std::atomic<std::uint64_t>, core::sla_history::ttft_bounds.size() + 1> ttft{};
};

// Counts a finished request (routes under /v1 only) in the worker's shard.
void record_sla(sla_shard& shard, std::string_view route, const obs::request_record& record);

struct incident {
  std::int64_t unix_ms = 0;
  std::string kind;  // ejected, readmitted, unhealthy, healthy, tier_switch, resumed, alert,
                     // resolved, reload
  std::string upstream;
  std::string message;
};

struct upstream_sla {
  std::optional<double> availability_5m;  // successful attempts / attempts
  std::optional<double> ttft_p50_s;
  std::optional<double> ttft_p99_s;
  std::optional<double> error_rate_1m;  // failed attempts / attempts, the last minute
  std::uint64_t attempts_5m = 0;
};

struct dashboard_report {
  std::int64_t unix_ms = 0;  // when it was made
  double objective = 0.9999;
  struct window {
    std::string name;  // "5m", "1h", "24h"
    core::sla_history::window value;
  };
  std::vector<window> windows;
  std::optional<double> error_budget_left;  // of the last 24 h's budget, in [.., 1]
  std::vector<core::sla_history::point> series;  // the last hour, one point per bucket
  double bucket_seconds = 10;
  std::vector<incident> incidents;  // newest first
  std::vector<core::alert> alerts;  // firing
  std::vector<upstream_sla> upstreams;  // index-aligned with the generation's upstreams
};

}  // namespace nines::gateway
