#include "core/routing/retry_budget.hpp"

#include <algorithm>
#include <cmath>

namespace nines::core {

bool retry_allowed(const retry_budget_settings& s, std::uint64_t active_requests,
                   std::uint64_t active_retries) {
  const auto budget = std::max<double>(s.min_retry_concurrency,
                                       std::floor(s.budget_percent * static_cast<double>(active_requests)));
  return static_cast<double>(active_retries) < budget;
}

}  // namespace nines::core
