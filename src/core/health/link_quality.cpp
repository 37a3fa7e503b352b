#include "core/health/link_quality.hpp"

#include <algorithm>
#include <cmath>

namespace nines::core {

std::string_view to_string(quality_level level) {
  switch (level) {
    case quality_level::normal: return "normal";
    case quality_level::warning: return "warning";
    case quality_level::alert: return "alert";
  }
  return "unknown";
}

quality_level rate(double value, double normal_below, double alert_above) {
  if (value > alert_above) {
    return quality_level::alert;
  }
  return value < normal_below ? quality_level::normal : quality_level::warning;
}

quality_level link_report::overall() const {
  return std::max({rtt_level, loss_level, jitter_level});
}

link_quality::link_quality(std::size_t window, double alpha)
    : window_(std::max<std::size_t>(window, 2)), alpha_(std::clamp(alpha, 0.01, 1.0)) {
  samples_.reserve(window_);
}

void link_quality::record_success(std::chrono::nanoseconds rtt) {
  const double ms = std::chrono::duration<double, std::milli>(rtt).count();
  const sample s{true, ms};
  if (samples_.size() < window_) {
    samples_.push_back(s);
  } else {
    samples_[next_] = s;
  }
  next_ = (next_ + 1) % window_;
  ewma_ms_ = ewma_ms_ ? alpha_ * ms + (1 - alpha_) * *ewma_ms_ : ms;
  consecutive_failures_ = 0;
  ++consecutive_successes_;
}

void link_quality::record_failure() {
  const sample s{false, 0};
  if (samples_.size() < window_) {
    samples_.push_back(s);
  } else {
    samples_[next_] = s;
  }
  next_ = (next_ + 1) % window_;
  consecutive_successes_ = 0;
  ++consecutive_failures_;
}

link_report link_quality::report(const link_thresholds& t) const {
  link_report r;
  r.probes = samples_.size();
  std::vector<double> rtts;
  rtts.reserve(samples_.size());
  // Chronological order: the ring starts at next_ once it is full.
  const std::size_t start = samples_.size() < window_ ? 0 : next_;
  std::optional<double> previous;
  double jitter_sum = 0;
  std::size_t jitter_pairs = 0;
  for (std::size_t k = 0; k < samples_.size(); ++k) {
    const auto& s = samples_[(start + k) % samples_.size()];
    if (!s.ok) {
      ++r.failed;
      continue;
    }
    rtts.push_back(s.rtt_ms);
    if (previous) {
      jitter_sum += std::fabs(s.rtt_ms - *previous);
      ++jitter_pairs;
    }
    previous = s.rtt_ms;
  }
  r.loss = r.probes ? static_cast<double>(r.failed) / static_cast<double>(r.probes) : 0.0;
  r.jitter_ms = jitter_pairs ? jitter_sum / static_cast<double>(jitter_pairs) : 0.0;
  r.rtt_ewma_ms = ewma_ms_.value_or(0);
  if (!rtts.empty()) {
    std::sort(rtts.begin(), rtts.end());
    const auto at = static_cast<std::size_t>(std::ceil(0.99 * static_cast<double>(rtts.size()))) - 1;
    r.rtt_p99_ms = rtts[std::min(at, rtts.size() - 1)];
    r.rtt_min_ms = rtts.front();
  }
  const auto ms = [](milliseconds d) { return static_cast<double>(d.count()); };
  r.rtt_level = rate(r.rtt_ewma_ms, ms(t.rtt_normal), ms(t.rtt_alert));
  r.loss_level = rate(r.loss, 1e-12, t.loss_alert);
  r.jitter_level = rate(r.jitter_ms, ms(t.jitter_normal), ms(t.jitter_alert));
  return r;
}

}  // namespace nines::core
