#include "core/config/alerting_config.hpp"

namespace nines::core {

void read_alerting(toml_reader& r, const toml::table& t, alerting_config& a) {
  const std::string p = "alerting.";
  r.unknown_keys(t, p,
                 {"objective_percent", "webhooks", "evaluation_interval_ms", "repeat_interval_ms",
                  "webhook_attempts", "webhook_timeout_ms", "burn_min_requests",
                  "ttft_p99_threshold_ms", "ttft_window_ms", "ttft_for_ms", "error_spike_count",
                  "error_spike_window_ms", "upstream_down_for_ms"});
  double objective = a.rules.objective * 100;
  r.number(t, p, "objective_percent", objective, 50, 99.99999);
  a.rules.objective = objective / 100;
  r.array(t, p, "webhooks", "must be an array of URLs",
          [&](const toml::node& n, const std::string& at) {
            const auto v = n.value_exact<std::string>();
            if (!v || !(v->starts_with("http://") || v->starts_with("https://"))) {
              r.problem(at, &n, "must be an http:// or https:// URL");
            } else {
              a.webhooks.push_back(*v);
            }
          });
  r.duration(t, p, "evaluation_interval_ms", a.evaluation_interval, 100);
  r.duration(t, p, "repeat_interval_ms", a.repeat_interval, 1000);
  r.integer(t, p, "webhook_attempts", a.webhook_attempts, 1, 100);
  r.duration(t, p, "webhook_timeout_ms", a.webhook_timeout, 100);
  r.integer(t, p, "burn_min_requests", a.rules.burn_min_requests, 0, 1LL << 40);
  milliseconds ms{static_cast<std::int64_t>(a.rules.ttft_p99_threshold_s * 1000)};
  r.duration(t, p, "ttft_p99_threshold_ms", ms);
  a.rules.ttft_p99_threshold_s = static_cast<double>(ms.count()) / 1000;
  const auto window = [&](std::string_view key, std::chrono::seconds& out, std::int64_t min_ms) {
    milliseconds v = std::chrono::duration_cast<milliseconds>(out);
    r.duration(t, p, key, v, min_ms);
    out = std::chrono::duration_cast<std::chrono::seconds>(v);
    if (out.count() == 0 && min_ms > 0) {
      out = std::chrono::seconds(1);
    }
  };
  window("ttft_window_ms", a.rules.ttft_window, 1000);
  r.duration(t, p, "ttft_for_ms", a.rules.ttft_for, 0);
  r.integer(t, p, "error_spike_count", a.rules.error_spike_count, 0, 1LL << 40);
  window("error_spike_window_ms", a.rules.error_spike_window, 1000);
  r.duration(t, p, "upstream_down_for_ms", a.rules.upstream_down_for, 0);
}

}  // namespace nines::core
