#pragma once
// Chooses the upstream for the next attempt of a request.
//
// 1. The tier: the tier in use (chosen with hysteresis by the health monitor, core/tier_selector)
//    when it has a usable upstream this request has not tried, else the best tier that has one.
// 2. Within the tier, power of two choices: two upstreams drawn at random in proportion to their
//    weights, and of the two the one with the lower cost
//    (in_flight + 1) / score × (1 + failures in a row + hedge races lost in a row), so that load
//    goes where it is served fastest without herding onto one upstream. The last factor is live (no
//    waiting for the health monitor's next tick): an upstream that fails fast, or whose slow
//    attempts hedges cancel, has few requests in flight, and would otherwise attract the load.
// 3. Usable means: available (healthy, breaker closed, or a half-open trial slot free), under its
//    concurrency limit, and for a retry, with retry tokens left. A tier in panic (too few healthy
//    upstreams) ignores health and spreads over all its upstreams rather than overload the rest.
// 4. When no fresh usable upstream is left, a retry prefers one this request has not tried, even if
//    it is ejected or failed its probes (it may have recovered; the ones tried just failed this very
//    request), unless it is cooling down (it refused connections, or asked to wait with
//    Retry-After); then tried usable ones; then anything. Health never makes the gateway refuse
//    work it could have done. Only upstreams at their concurrency limit are never chosen; when
//    every one is, there is no choice (overflow).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "core/random.hpp"

namespace nines::core {

struct upstream_candidate {
  int priority = 0;
  unsigned weight = 1;
  bool available = true;   // healthy, not cooling down, breaker closed or a trial slot free
  bool cooling = false;    // refused connections or asked to wait (Retry-After): not now
  double score = 1.0;      // health score in [0, 1]
  unsigned in_flight = 0;  // attempts in flight, all workers
  unsigned failures_in_row = 0;  // its latest attempts failed, this many in a row
  unsigned races_lost = 0;       // its first attempts were beaten by hedges, this many in a row
  bool at_limit = false;   // max_requests reached
  bool retry_ok = true;    // its retry tokens allow a retry
  bool panic = false;      // its tier is in panic: health is ignored there
};

struct selection_context {
  std::optional<int> active_priority;  // the tier in use, by priority
  bool retry = false;                  // this attempt is a retry
};

// `tried` is a bit set over candidate indices (at most 64 upstreams take part in one choice).
std::optional<std::size_t> select_upstream(std::span<const upstream_candidate> candidates,
                                           std::uint64_t tried, rng& random,
                                           const selection_context& context = {});

}  // namespace nines::core
