#include "core/routing/upstream_cooldown.hpp"

#include "core/routing/backoff.hpp"

namespace nines::core {

std::chrono::milliseconds cooldown_for(const cooldown_policy& policy, unsigned consecutive_failures) {
  if (consecutive_failures == 0) {
    return std::chrono::milliseconds(0);
  }
  // The same doubling as retry backoff, without jitter: an upstream's state, not a client's wait.
  return backoff_ceiling(backoff_policy{policy.base, policy.cap}, consecutive_failures - 1);
}

}  // namespace nines::core
