#pragma once
// The built-in alert rules, for operators without Prometheus: the same kinds as
// deploy/prometheus/nines-rules.yml, evaluated over the gateway's own SLA history.
//
//   NinesErrorBudgetBurnFast    page    burn rate > 14.4 over 1 h and over 5 min
//   NinesErrorBudgetBurnMedium  page    burn rate > 6 over 6 h and over 30 min
//   NinesErrorBudgetBurnSlow    ticket  burn rate > 1 over 3 d and over 6 h (the history keeps
//                                       24 h: the long window is what it holds)
//   NinesTTFTHigh               warning p99 time to first token > 2 s over 5 min, for 3 min
//   NinesErrorSpike             page    more than 100 failed requests in 5 min
//   NinesUpstreamDown           warning an upstream unhealthy or ejected for 1 min (per upstream)
//
// The burn rate is the error ratio divided by the error budget (1 − objective): at 14.4 a 30-day
// budget lasts about two days (the SRE workbook's multi-window, multi-burn-rate alerts). A
// window with fewer than `burn_min_requests` requests does not fire (one failure in three requests
// is not a burn).
//
// Pure: evaluate() takes the history and the upstreams' states with the time, and returns what
// changed (fired or resolved); the gateway sends the notifications.

#include <chrono>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "core/obs/sla_history.hpp"

namespace nines::core {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct burn_rule {
  std::string name;
  std::string severity;
  double factor = 1;
  seconds long_window{3600};
  seconds short_window{300};
};

struct alert_settings {
  double objective = 0.9999;
  std::vector<burn_rule> burns{
      {"NinesErrorBudgetBurnFast", "page", 14.4, seconds(3600), seconds(300)},
      {"NinesErrorBudgetBurnMedium", "page", 6, seconds(6 * 3600), seconds(1800)},
      {"NinesErrorBudgetBurnSlow", "ticket", 1, seconds(3 * 24 * 3600), seconds(6 * 3600)}};
  std::uint64_t burn_min_requests = 10;
  double ttft_p99_threshold_s = 2;
  seconds ttft_window{300};
  milliseconds ttft_for{180000};  // how long a condition holds before it fires
  std::uint64_t error_spike_count = 100;
  seconds error_spike_window{300};
  milliseconds upstream_down_for{60000};
};

struct upstream_condition {
  std::string name;
  bool down = false;  // unhealthy by its probes, or ejected
  std::string why;
};

struct alert {
  std::string name;
  std::map<std::string, std::string> labels;  // alertname, severity, upstream...
  std::string summary;
  bool firing = false;
  std::chrono::steady_clock::time_point since{};  // when it started firing (or pending)
  std::string key() const;  // name and labels: what makes two alerts the same one
};

class alert_evaluator {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit alert_evaluator(alert_settings settings) : settings_(std::move(settings)) {}

  // Evaluates every rule; returns the alerts that started or stopped firing since the last call.
  std::vector<alert> evaluate(const sla_history& history,
                              std::span<const upstream_condition> upstreams, time_point now);
  // Every alert firing now.
  std::vector<alert> firing() const;
  const alert_settings& settings() const { return settings_; }
  // New thresholds (a reload); what fires keeps firing until the new rules say otherwise.
  void reconfigure(alert_settings settings) { settings_ = std::move(settings); }

  // Applies one rule's verdict for `a` (its name and labels say which alert): it fires once the
  // condition has held for `hold`, and is resolved when it no longer holds; a transition is
  // appended to `changes`. For rules kept elsewhere (the device keeper's, core/devices).
  void apply(alert a, bool condition, milliseconds hold, time_point now,
             std::vector<alert>& changes);
  // Forgets the alerts neither firing nor pending (rules over a changing set: phones removed).
  void forget_settled();

 private:
  struct state {
    alert current;
    std::optional<time_point> pending_since;
  };

  alert_settings settings_;
  std::map<std::string, state> states_;
};

}  // namespace nines::core
