#include "core/upstream_selector.hpp"

#include <limits>

namespace nines::core {
namespace {

bool is_tried(std::uint64_t tried, std::size_t i) { return i < 64 && ((tried >> i) & 1U) != 0; }

// Weighted choice in the best tier among candidates passing `eligible`.
template <class Eligible>
std::optional<std::size_t> choose(std::span<const upstream_candidate> candidates,
                                  Eligible eligible, rng& random) {
  int best = std::numeric_limits<int>::max();
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (!eligible(i)) {
      continue;
    }
    if (candidates[i].priority < best) {
      best = candidates[i].priority;
      total = 0;
    }
    if (candidates[i].priority == best) {
      total += candidates[i].weight;
    }
  }
  if (total == 0) {
    return std::nullopt;
  }
  std::uint64_t pick = random.below(total);
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (!eligible(i) || candidates[i].priority != best) {
      continue;
    }
    if (pick < candidates[i].weight) {
      return i;
    }
    pick -= candidates[i].weight;
  }
  return std::nullopt;  // unreachable: the weights summed to total
}

}  // namespace

std::optional<std::size_t> select_upstream(std::span<const upstream_candidate> candidates,
                                           std::uint64_t tried, rng& random) {
  const auto limit = std::min<std::size_t>(candidates.size(), 64);
  candidates = candidates.first(limit);
  // In order of preference: fresh and available; available again; fresh; anything.
  if (auto i = choose(candidates, [&](std::size_t k) {
        return candidates[k].available && !is_tried(tried, k);
      }, random)) {
    return i;
  }
  if (auto i = choose(candidates, [&](std::size_t k) { return candidates[k].available; }, random)) {
    return i;
  }
  if (auto i = choose(candidates, [&](std::size_t k) { return !is_tried(tried, k); }, random)) {
    return i;
  }
  return choose(candidates, [](std::size_t) { return true; }, random);
}

}  // namespace nines::core
