#pragma once
// An upstream's credentials (api_keys, a key file, an OAuth token) as slots used in turn: a slot
// an upstream refused (401 or 403) cools down — 30 s, doubling with each refusal in a row up to
// 10 minutes — and the next request takes the next slot that is not cooling. A success, or a new
// secret in the slot (the key file changed, a fresh token), ends the cooldown.
//
// Pure: times are passed in. Thread-safe: every worker picks and reports on the same ring, with
// relaxed atomics (a race costs at most one more request on a cooling key).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace nines::core {

class credential_ring {
 public:
  using clock_time = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::milliseconds first_cooldown{30000};
  static constexpr std::chrono::milliseconds longest_cooldown{600000};

  explicit credential_ring(std::size_t slots);

  std::size_t size() const { return count_; }
  // The slot for the next request: round robin over those not cooling at `now`, skipping the
  // ones in `excluded` (a bit per slot: already refused for this request). nullopt: none is usable.
  std::optional<std::size_t> choose(clock_time now, std::uint64_t excluded = 0);
  // The upstream refused the slot's secret: it cools down from `now`; returns the cooldown.
  std::chrono::milliseconds refused(std::size_t slot, clock_time now);
  // The upstream took it, or the slot holds a new secret: usable again at once.
  void cleared(std::size_t slot);
  bool cooling(std::size_t slot, clock_time now) const;
  // Slots usable at `now`.
  std::size_t usable(clock_time now) const;

 private:
  struct slot_state {
    std::atomic<std::int64_t> cooling_until{0};  // steady ns since epoch; 0: not cooling
    std::atomic<std::uint32_t> refusals{0};      // in a row
  };
  static std::int64_t ns(clock_time t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  }
  std::size_t count_;
  std::unique_ptr<slot_state[]> slots_;
  std::atomic<std::uint64_t> next_{0};
};

// When to refresh an OAuth token issued at `issued` that lives `lifetime`: `exp − max(5 min, 10%
// of its life)`, but never before half of its life has passed (a token shorter than ten minutes
// would otherwise be refreshed at once, again and again: those are refreshed at 90% of their
// life, and never less than a second after they were issued). A lifetime of zero or less (no
// expires_in): refreshed after one hour.
std::chrono::steady_clock::time_point token_refresh_time(std::chrono::steady_clock::time_point issued,
                                                         std::chrono::seconds lifetime);

}  // namespace nines::core
