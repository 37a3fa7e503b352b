#pragma once
// Which priority tier takes the traffic, with hysteresis (the design reference's "QoS switching
// with hysteresis"): the gateway leaves the tier in use only when it has no usable upstream or its
// best health score falls below `leave_below`, and goes back to a better (lower-numbered) tier only
// after that tier has stayed healthy for `hysteresis`. An upstream that flaps therefore moves the
// traffic away once, not at every flap.
//
// Pure: the health monitor calls update() at every tick with each tier's best score and the time.

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace nines::core {

struct tier_settings {
  double leave_below = 0.3;                    // a tier whose best score is below this is left
  std::chrono::milliseconds hysteresis{30000};  // how long a better tier must stay healthy
};

class tier_selector {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // `tiers` tiers, numbered 0 (best) upwards. At `start`, every tier counts as healthy for long
  // enough, so the best one is used at once.
  tier_selector(std::size_t tiers, tier_settings settings, time_point start);

  // `best_scores[i]`: the best score among tier i's usable upstreams, or a negative number when
  // it has none. Returns the tier in use after this update.
  std::size_t update(std::span<const double> best_scores, time_point now);

  std::size_t current() const { return current_; }
  std::uint64_t switches() const { return switches_; }
  const tier_settings& settings() const { return settings_; }

 private:
  bool stable(std::size_t tier, time_point now) const;

  tier_settings settings_;
  std::vector<std::optional<time_point>> healthy_since_;
  std::size_t current_ = 0;
  std::uint64_t switches_ = 0;
};

}  // namespace nines::core
