#pragma once
// Chooses the upstream for the next attempt of a request: the most preferred priority tier first,
// then a weighted random choice inside it. Upstreams already tried by this request are avoided
// while any other remains, and upstreams the caller marks unavailable (cooling down after
// failures, or asked to wait by Retry-After) are used only when nothing else is left.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "core/random.hpp"

namespace nines::core {

struct upstream_candidate {
  int priority = 0;
  unsigned weight = 1;
  bool available = true;
};

// `tried` is a bit set over candidate indices (at most 64 upstreams take part in one choice).
std::optional<std::size_t> select_upstream(std::span<const upstream_candidate> candidates,
                                           std::uint64_t tried, rng& random);

}  // namespace nines::core
