#pragma once
// Exponential backoff with full jitter ("Exponential Backoff And Jitter", AWS Architecture Blog):
// the n-th retry waits a uniform random time in [0, min(cap, base * 2^n)]. Full jitter spreads
// retries of many clients evenly instead of synchronising them into waves.

#include <chrono>

#include "core/random.hpp"

namespace nines::core {

struct backoff_policy {
  std::chrono::milliseconds base{25};
  std::chrono::milliseconds cap{1000};
};

// The ceiling of the wait before retry number `retry_index` (0 for the first retry).
std::chrono::milliseconds backoff_ceiling(const backoff_policy& policy, unsigned retry_index);

// The wait before retry number `retry_index`, drawn from `random`.
std::chrono::milliseconds full_jitter_delay(const backoff_policy& policy, unsigned retry_index,
                                            rng& random);

}  // namespace nines::core
