#pragma once
// The quality of a path to an upstream, measured by probes: round-trip time (an exponentially
// weighted moving average, and the p99 of a sliding window), loss (failed probes over the
// window's probes) and jitter (the mean absolute difference of successive round-trip times), each
// rated against thresholds (normal / warning / alert). The reference values are those of the
// design reference's monitoring table: RTT normal below 100 ms, alert above 300 ms; loss alert
// above 1%; jitter normal below 30 ms, alert above 80 ms.
//
// Pure: probes are recorded with their result; nothing here sends one or reads a clock.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace nines::core {

using std::chrono::milliseconds;

struct link_thresholds {
  milliseconds rtt_normal{100};
  milliseconds rtt_alert{300};
  double loss_alert = 0.01;
  milliseconds jitter_normal{30};
  milliseconds jitter_alert{80};
};

enum class quality_level { normal, warning, alert };
std::string_view to_string(quality_level level);

struct link_report {
  std::size_t probes = 0;   // in the window
  std::size_t failed = 0;   // in the window
  double rtt_ewma_ms = 0;
  double rtt_p99_ms = 0;
  double rtt_min_ms = 0;
  double loss = 0;          // failed / probes
  double jitter_ms = 0;
  quality_level rtt_level = quality_level::normal;
  quality_level loss_level = quality_level::normal;
  quality_level jitter_level = quality_level::normal;
  // The worst of the three (what an operator is alerted on).
  quality_level overall() const;
};

class link_quality {
 public:
  // `window` probes are kept; `alpha` weighs each new RTT in the moving average.
  explicit link_quality(std::size_t window = 100, double alpha = 0.2);

  void record_success(std::chrono::nanoseconds rtt);
  void record_failure();

  link_report report(const link_thresholds& thresholds) const;
  // Probes that failed in a row, most recent last (0 after a success).
  unsigned consecutive_failures() const { return consecutive_failures_; }
  unsigned consecutive_successes() const { return consecutive_successes_; }
  bool empty() const { return samples_.empty(); }

 private:
  struct sample {
    bool ok = false;
    double rtt_ms = 0;
  };
  std::size_t window_;
  double alpha_;
  std::vector<sample> samples_;  // a ring of the last `window_` probes
  std::size_t next_ = 0;
  std::optional<double> ewma_ms_;
  unsigned consecutive_failures_ = 0;
  unsigned consecutive_successes_ = 0;
};

quality_level rate(double value, double normal_below, double alert_above);

}  // namespace nines::core
