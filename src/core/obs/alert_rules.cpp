#include "core/obs/alert_rules.hpp"

#include <fmt/format.h>

namespace nines::core {

std::string alert::key() const {
  std::string k = name;
  for (const auto& [label, value] : labels) {
    k += "|" + label + "=" + value;
  }
  return k;
}

void alert_evaluator::apply(alert a, bool condition, milliseconds hold, time_point now,
                            std::vector<alert>& changes) {
  auto& s = states_[a.key()];
  if (condition) {
    if (!s.pending_since) {
      s.pending_since = now;
    }
    if (!s.current.firing && now - *s.pending_since >= hold) {
      a.firing = true;
      a.since = now;
      s.current = a;
      changes.push_back(a);
    } else if (s.current.firing) {
      s.current.summary = a.summary;  // the latest numbers
    }
    return;
  }
  s.pending_since.reset();
  if (s.current.firing) {
    s.current.firing = false;
    s.current.summary = a.summary;
    changes.push_back(s.current);
  }
}

void alert_evaluator::forget_settled() {
  std::erase_if(states_, [](const auto& entry) {
    return !entry.second.current.firing && !entry.second.pending_since;
  });
}

std::vector<alert> alert_evaluator::evaluate(const sla_history& history,
                                             std::span<const upstream_condition> upstreams,
                                             time_point now) {
  std::vector<alert> changes;
  const double budget = std::max(1e-9, 1 - settings_.objective);
  for (const auto& rule : settings_.burns) {
    const auto long_w = history.over(now, rule.long_window);
    const auto short_w = history.over(now, rule.short_window);
    const auto ratio = [](const sla_history::window& w) {
      return w.good + w.bad == 0 ? 0.0
                                 : static_cast<double>(w.bad) / static_cast<double>(w.good + w.bad);
    };
    const double long_burn = ratio(long_w) / budget;
    const double short_burn = ratio(short_w) / budget;
    const bool burning = long_burn > rule.factor && short_burn > rule.factor &&
                         short_w.good + short_w.bad >= settings_.burn_min_requests;
    alert a;
    a.name = rule.name;
    a.labels = {{"alertname", rule.name}, {"severity", rule.severity}};
    a.summary = fmt::format(
        "error budget burning at {:.1f}x over {} min and {:.1f}x over {} min (objective {:.2f}%)",
        long_burn, rule.long_window.count() / 60, short_burn, rule.short_window.count() / 60,
        100 * settings_.objective);
    apply(std::move(a), burning, milliseconds(0), now, changes);
  }
  {
    const auto w = history.over(now, settings_.ttft_window);
    const bool slow = w.ttft_p99_s && *w.ttft_p99_s > settings_.ttft_p99_threshold_s;
    alert a;
    a.name = "NinesTTFTHigh";
    a.labels = {{"alertname", a.name}, {"severity", "warning"}};
    a.summary = fmt::format("p99 time to first token {:.2f} s over {} min (threshold {:.2f} s)",
                            w.ttft_p99_s.value_or(0), settings_.ttft_window.count() / 60,
                            settings_.ttft_p99_threshold_s);
    apply(std::move(a), slow, settings_.ttft_for, now, changes);
  }
  {
    const auto w = history.over(now, settings_.error_spike_window);
    alert a;
    a.name = "NinesErrorSpike";
    a.labels = {{"alertname", a.name}, {"severity", "page"}};
    a.summary = fmt::format("{} failed requests in the last {} s (threshold {})", w.bad,
                            settings_.error_spike_window.count(), settings_.error_spike_count);
    apply(std::move(a), w.bad > settings_.error_spike_count, milliseconds(0), now, changes);
  }
  for (const auto& u : upstreams) {
    alert a;
    a.name = "NinesUpstreamDown";
    a.labels = {{"alertname", a.name}, {"severity", "warning"}, {"upstream", u.name}};
    a.summary = u.down ? fmt::format("upstream {} is {}", u.name, u.why)
                       : fmt::format("upstream {} is healthy again", u.name);
    apply(std::move(a), u.down, settings_.upstream_down_for, now, changes);
  }
  return changes;
}

std::vector<alert> alert_evaluator::firing() const {
  std::vector<alert> out;
  for (const auto& [key, s] : states_) {
    if (s.current.firing) {
      out.push_back(s.current);
    }
  }
  return out;
}

}  // namespace nines::core
