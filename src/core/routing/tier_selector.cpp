#include "core/routing/tier_selector.hpp"

namespace nines::core {

tier_selector::tier_selector(std::size_t tiers, tier_settings settings, time_point start)
    : settings_(settings), healthy_since_(tiers == 0 ? 1 : tiers, start - settings.hysteresis) {}

bool tier_selector::stable(std::size_t tier, time_point now) const {
  return healthy_since_[tier] && now - *healthy_since_[tier] >= settings_.hysteresis;
}

std::size_t tier_selector::update(std::span<const double> best_scores, time_point now) {
  const std::size_t tiers = std::min(best_scores.size(), healthy_since_.size());
  const auto ok = [&](std::size_t t) { return best_scores[t] >= settings_.leave_below; };
  for (std::size_t t = 0; t < tiers; ++t) {
    if (!ok(t)) {
      healthy_since_[t].reset();
    } else if (!healthy_since_[t]) {
      healthy_since_[t] = now;
    }
  }
  std::size_t next = current_;
  if (current_ >= tiers || !ok(current_)) {
    // Leave: the best tier that has been healthy for long enough, else the best healthy one,
    // else stay (the selector falls back on whatever can serve).
    std::optional<std::size_t> best_stable;
    std::optional<std::size_t> best_ok;
    for (std::size_t t = 0; t < tiers; ++t) {
      if (ok(t) && !best_ok) {
        best_ok = t;
      }
      if (ok(t) && stable(t, now) && !best_stable) {
        best_stable = t;
      }
    }
    if (best_stable) {
      next = *best_stable;
    } else if (best_ok) {
      next = *best_ok;
    }
  } else {
    // Return to a better tier only once it has stayed healthy for the hysteresis time.
    for (std::size_t t = 0; t < current_; ++t) {
      if (ok(t) && stable(t, now)) {
        next = t;
        break;
      }
    }
  }
  if (next != current_) {
    current_ = next;
    ++switches_;
  }
  return current_;
}

}  // namespace nines::core
