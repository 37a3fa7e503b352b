#pragma once
// What all workers know about each upstream's recent failures: consecutive connection failures
// (which cool the upstream down, see core/upstream_cooldown.hpp) and a Retry-After wait. Shared
// between workers as relaxed atomics: a stale read costs at most one extra attempt.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

#include "core/upstream_cooldown.hpp"

namespace nines::gateway {

class upstream_health {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit upstream_health(std::size_t upstreams)
      : entries_(std::make_unique<entry[]>(upstreams)), size_(upstreams) {}

  std::size_t size() const { return size_; }

  bool available(std::size_t i, time_point now) const {
    return now.time_since_epoch().count() >= entries_[i].avoid_until.load(std::memory_order_relaxed);
  }
  unsigned consecutive_failures(std::size_t i) const {
    return entries_[i].failures.load(std::memory_order_relaxed);
  }

  void record_success(std::size_t i) {
    auto& e = entries_[i];
    if (e.failures.load(std::memory_order_relaxed) != 0) {
      e.failures.store(0, std::memory_order_relaxed);
    }
  }

  void record_connect_failure(std::size_t i, time_point now, const core::cooldown_policy& policy) {
    auto& e = entries_[i];
    const unsigned n = e.failures.fetch_add(1, std::memory_order_relaxed) + 1;
    avoid_until(i, now + core::cooldown_for(policy, n));
  }

  // Never shortens an existing wait.
  void avoid_until(std::size_t i, time_point until) {
    auto& slot = entries_[i].avoid_until;
    const auto want = until.time_since_epoch().count();
    auto have = slot.load(std::memory_order_relaxed);
    while (have < want && !slot.compare_exchange_weak(have, want, std::memory_order_relaxed)) {
    }
  }

 private:
  struct entry {
    std::atomic<unsigned> failures{0};
    std::atomic<std::int64_t> avoid_until{0};
  };
  std::unique_ptr<entry[]> entries_;
  std::size_t size_;
};

}  // namespace nines::gateway
