#include "core/routing/upstream_selector.hpp"

#include <algorithm>
#include <limits>
#include <vector>

namespace nines::core {
namespace {

bool is_tried(std::uint64_t tried, std::size_t i) { return i < 64 && ((tried >> i) & 1U) != 0; }

// A draw in proportion to the weights of `pool`, skipping index `skip`.
std::size_t weighted_draw(std::span<const upstream_candidate> c, const std::vector<std::size_t>& pool,
                          std::size_t skip, rng& random) {
  std::uint64_t total = 0;
  for (auto i : pool) {
    total += i == skip ? 0 : std::max(c[i].weight, 1U);
  }
  std::uint64_t pick = random.below(total);
  for (auto i : pool) {
    if (i == skip) {
      continue;
    }
    const std::uint64_t w = std::max(c[i].weight, 1U);
    if (pick < w) {
      return i;
    }
    pick -= w;
  }
  return pool.front();  // unreachable: the weights summed to total
}

double cost(const upstream_candidate& c) {
  return (static_cast<double>(c.in_flight) + 1.0) / std::max(c.score, 0.05) *
         (1.0 + static_cast<double>(c.failures_in_row) + static_cast<double>(c.races_lost));
}

// Power of two choices among the eligible upstreams of the preferred tier (`only_priority`, or
// else the best tier that has any).
template <class Eligible>
std::optional<std::size_t> choose(std::span<const upstream_candidate> c, Eligible eligible,
                                  std::optional<int> only_priority, rng& random) {
  int tier = std::numeric_limits<int>::max();
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (eligible(i) && (!only_priority || c[i].priority == *only_priority)) {
      tier = std::min(tier, c[i].priority);
    }
  }
  std::vector<std::size_t> pool;
  for (std::size_t i = 0; i < c.size(); ++i) {
    if (eligible(i) && c[i].priority == tier) {
      pool.push_back(i);
    }
  }
  if (pool.empty()) {
    return std::nullopt;
  }
  if (pool.size() == 1) {
    return pool.front();
  }
  const auto first = weighted_draw(c, pool, c.size(), random);
  const auto second = weighted_draw(c, pool, first, random);
  return cost(c[second]) < cost(c[first]) ? second : first;
}

}  // namespace

std::optional<std::size_t> select_upstream(std::span<const upstream_candidate> candidates,
                                           std::uint64_t tried, rng& random,
                                           const selection_context& context) {
  const auto limit = std::min<std::size_t>(candidates.size(), 64);
  const auto c = candidates.first(limit);
  const auto healthy = [&](std::size_t k) {
    return c[k].available || c[k].panic;
  };
  const auto fresh_and_usable = [&](std::size_t k) {
    return !c[k].at_limit && !is_tried(tried, k) && healthy(k) && (!context.retry || c[k].retry_ok);
  };
  // In order of preference: usable and fresh in the tier in use; in any tier; fresh and not
  // cooling down whatever its health; usable again; fresh whatever; anything under its limit.
  if (context.active_priority) {
    if (auto i = choose(c, fresh_and_usable, context.active_priority, random)) {
      return i;
    }
  }
  if (auto i = choose(c, fresh_and_usable, std::nullopt, random)) {
    return i;
  }
  if (auto i = choose(c, [&](std::size_t k) {
        return !c[k].at_limit && !is_tried(tried, k) && !c[k].cooling;
      }, std::nullopt, random)) {
    return i;
  }
  if (auto i = choose(c, [&](std::size_t k) { return !c[k].at_limit && healthy(k); }, std::nullopt,
                      random)) {
    return i;
  }
  if (auto i = choose(c, [&](std::size_t k) { return !c[k].at_limit && !is_tried(tried, k); },
                      std::nullopt, random)) {
    return i;
  }
  return choose(c, [&](std::size_t k) { return !c[k].at_limit; }, std::nullopt, random);
}

}  // namespace nines::core
