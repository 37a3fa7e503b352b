#include "core/health/outlier_detector.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace nines::core {

std::string_view to_string(breaker_state state) {
  switch (state) {
    case breaker_state::closed: return "closed";
    case breaker_state::open: return "open";
    case breaker_state::half_open: return "half_open";
  }
  return "unknown";
}

outlier_detector::outlier_detector(outlier_settings settings, std::size_t upstreams)
    : settings_(settings), entries_(upstreams) {}

double outlier_detector::failure_rate(std::size_t i) const {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  for (const auto& b : entries_[i].window) {
    ok += b.successes;
    failed += b.failures;
  }
  return ok + failed == 0 ? 0.0 : static_cast<double>(failed) / static_cast<double>(ok + failed);
}

std::uint64_t outlier_detector::window_attempts(std::size_t i) const {
  std::uint64_t n = 0;
  for (const auto& b : entries_[i].window) {
    n += b.successes + b.failures;
  }
  return n;
}

std::size_t outlier_detector::ejected() const {
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(), [](const entry& e) {
    return e.state != breaker_state::closed;
  }));
}

bool outlier_detector::may_eject() const {
  const auto out = ejected();
  const auto total = entries_.size();
  if (out + 1 >= total) {
    return false;  // never the last one in service
  }
  return static_cast<double>(out + 1) <= settings_.max_ejection_percent * static_cast<double>(total);
}

std::string outlier_detector::ejection_reason(const entry& e, const traffic_report& t) const {
  if (settings_.consecutive_gateway_failures > 0 &&
      t.consecutive_gateway_failures >= settings_.consecutive_gateway_failures) {
    return fmt::format("{} gateway failures in a row", t.consecutive_gateway_failures);
  }
  if (settings_.consecutive_connect_failures > 0 &&
      t.consecutive_connect_failures >= settings_.consecutive_connect_failures) {
    return fmt::format("{} connection failures in a row", t.consecutive_connect_failures);
  }
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  for (const auto& b : e.window) {
    ok += b.successes;
    failed += b.failures;
  }
  if (ok + failed >= settings_.failure_rate_min_requests && ok + failed > 0 &&
      static_cast<double>(failed) >= settings_.failure_rate_threshold * static_cast<double>(ok + failed)) {
    return fmt::format("failure rate {:.0f}% over {} attempts",
                       100.0 * static_cast<double>(failed) / static_cast<double>(ok + failed),
                       ok + failed);
  }
  return {};
}

void outlier_detector::open(entry& e, time_point now, std::string reason) {
  e.state = breaker_state::open;
  ++e.ejections;
  ++e.ejections_total;
  const auto wanted = settings_.base_ejection * e.ejections;
  e.open_until = now + std::min<std::chrono::milliseconds>(wanted, settings_.max_ejection);
  e.window.clear();
  e.trial_successes = 0;
  e.reason = std::move(reason);
}

void outlier_detector::tick(std::span<const traffic_report> traffic, time_point now) {
  if (!settings_.enabled) {
    return;
  }
  for (std::size_t i = 0; i < entries_.size() && i < traffic.size(); ++i) {
    auto& e = entries_[i];
    const auto& t = traffic[i];
    switch (e.state) {
      case breaker_state::closed: {
        e.window.push_back({now, t.successes, t.gateway_failures + t.connect_failures});
        while (!e.window.empty() && now - e.window.front().at > settings_.interval) {
          e.window.pop_front();
        }
        if (e.ejections > 0 && now - e.closed_since >= settings_.max_ejection) {
          e.ejections = 0;  // it has behaved for long enough: the next ejection is short again
        }
        if (auto why = ejection_reason(e, t); !why.empty() && may_eject()) {
          open(e, now, std::move(why));
        }
        break;
      }
      case breaker_state::open:
        if (now >= e.open_until) {
          e.state = breaker_state::half_open;
          e.trial_successes = 0;
        }
        break;
      case breaker_state::half_open:
        if (t.trial_failures > 0) {
          open(e, now, "a half-open trial failed");
        } else {
          e.trial_successes += t.trial_successes;
          if (e.trial_successes >= settings_.half_open_trials) {
            e.state = breaker_state::closed;
            e.closed_since = now;
            e.window.clear();
            e.reason.clear();
          }
        }
        break;
    }
  }
}

bool next_active_health(bool healthy, unsigned consecutive_successes, unsigned consecutive_failures,
                        const active_health_settings& s) {
  if (healthy) {
    return consecutive_failures < s.unhealthy_threshold;
  }
  return consecutive_successes >= s.healthy_threshold;
}

}  // namespace nines::core
