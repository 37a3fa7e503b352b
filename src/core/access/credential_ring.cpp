#include "core/access/credential_ring.hpp"

#include <algorithm>

namespace nines::core {

credential_ring::credential_ring(std::size_t slots)
    : count_(std::min<std::size_t>(std::max<std::size_t>(slots, 1), 64)),
      slots_(std::make_unique<slot_state[]>(count_)) {}

bool credential_ring::cooling(std::size_t slot, clock_time now) const {
  return slot < count_ && slots_[slot].cooling_until.load(std::memory_order_relaxed) > ns(now);
}

std::optional<std::size_t> credential_ring::choose(clock_time now, std::uint64_t excluded) {
  // One slot (api_key, a key file, a token): no turn to take, and no shared write per request.
  const std::size_t start =
      count_ == 1 ? 0 : next_.fetch_add(1, std::memory_order_relaxed) % count_;
  for (std::size_t i = 0; i < count_; ++i) {
    const std::size_t slot = (start + i) % count_;
    if ((excluded >> slot & 1U) == 0 && !cooling(slot, now)) {
      return slot;
    }
  }
  return std::nullopt;
}

std::chrono::milliseconds credential_ring::refused(std::size_t slot, clock_time now) {
  if (slot >= count_) {
    return std::chrono::milliseconds(0);
  }
  auto& s = slots_[slot];
  const auto n = std::min<std::uint32_t>(s.refusals.fetch_add(1, std::memory_order_relaxed), 16);
  const auto cooldown = std::min(first_cooldown * (std::int64_t{1} << std::min<std::uint32_t>(n, 10)),
                                 longest_cooldown);
  s.cooling_until.store(ns(now + cooldown), std::memory_order_relaxed);
  return cooldown;
}

void credential_ring::cleared(std::size_t slot) {
  if (slot >= count_) {
    return;
  }
  slots_[slot].refusals.store(0, std::memory_order_relaxed);
  slots_[slot].cooling_until.store(0, std::memory_order_relaxed);
}

std::size_t credential_ring::usable(clock_time now) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < count_; ++i) {
    n += cooling(i, now) ? 0 : 1;
  }
  return n;
}

std::chrono::steady_clock::time_point token_refresh_time(
    std::chrono::steady_clock::time_point issued, std::chrono::seconds lifetime) {
  using std::chrono::seconds;
  if (lifetime <= seconds(0)) {
    return issued + std::chrono::hours(1);
  }
  const auto margin = std::max<seconds>(seconds(300), lifetime / 10);
  if (lifetime - margin >= lifetime / 2) {
    return issued + lifetime - margin;
  }
  // A token of a few seconds: at 90% of its life, but never sooner than half of it or a second
  // (an endpoint answering expires_in: 1 must not be asked back to back).
  return issued + std::max<seconds>(lifetime - std::max<seconds>(seconds(1), lifetime / 10),
                                    std::max<seconds>(seconds(1), lifetime / 2));
}

}  // namespace nines::core
