#include "core/routing/backoff.hpp"

#include <algorithm>

namespace nines::core {

std::chrono::milliseconds backoff_ceiling(const backoff_policy& policy, unsigned retry_index) {
  const auto base = std::max<std::int64_t>(policy.base.count(), 0);
  const auto cap = std::max<std::int64_t>(policy.cap.count(), 0);
  // Shift without overflow: past 2^20 the cap has long been reached for any sane base.
  const unsigned shift = std::min(retry_index, 20U);
  const std::int64_t grown = base << shift;
  return std::chrono::milliseconds(std::min(grown, cap));
}

std::chrono::milliseconds full_jitter_delay(const backoff_policy& policy, unsigned retry_index,
                                            rng& random) {
  const auto ceiling = backoff_ceiling(policy, retry_index).count();
  return std::chrono::milliseconds(
      static_cast<std::int64_t>(random.below(static_cast<std::uint64_t>(ceiling) + 1)));
}

}  // namespace nines::core
