#include "core/routing/hedge_policy.hpp"

#include <algorithm>
#include <cmath>

namespace nines::core {

void ttfb_window::record(std::chrono::nanoseconds ttfb) {
  if (samples_.size() < capacity_) {
    samples_.push_back(ttfb);
  } else {
    samples_[next_] = ttfb;
  }
  next_ = (next_ + 1) % std::max<std::size_t>(capacity_, 1);
}

std::optional<std::chrono::nanoseconds> ttfb_window::quantile(double q) const {
  if (samples_.empty()) {
    return std::nullopt;
  }
  auto sorted = samples_;
  const auto at = static_cast<std::size_t>(
      std::clamp(std::ceil(q * static_cast<double>(sorted.size())) - 1, 0.0,
                 static_cast<double>(sorted.size() - 1)));
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(at), sorted.end());
  return sorted[at];
}

unsigned race_losses_that_count(unsigned losses_in_row, std::chrono::nanoseconds since_latest,
                                const hedge_settings& settings) {
  return since_latest < settings.loss_memory ? losses_in_row : 0;
}

std::chrono::milliseconds hedge_delay(const ttfb_window& observed, const hedge_settings& s,
                                      std::optional<std::chrono::milliseconds> fixed) {
  if (fixed) {
    return std::max(*fixed, std::chrono::milliseconds(1));
  }
  std::chrono::milliseconds delay = s.initial_delay;
  if (observed.size() >= s.min_samples) {
    delay = std::chrono::ceil<std::chrono::milliseconds>(*observed.quantile(s.quantile));
  }
  return std::clamp(delay, s.min_delay, s.max_delay);
}

}  // namespace nines::core
