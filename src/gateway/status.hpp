#pragma once
// GET /status: the gateway's state as JSON, one source of truth for `nines status` and the
// dashboard. Per upstream, under its configured name: state, health score, probe RTT/loss/jitter,
// in-flight attempts, ejections, breaker state, pool sizes, and whether its tier is in use.

#include <string>

#include "gateway/worker.hpp"

namespace nines::gateway {

// With `series`, the last hour of the SLA history too (for the dashboard's charts).
std::string status_json(const shared_state& shared, bool series = false);

// Upstreams that can take a request now: healthy, not ejected, not cooling down (GET /readyz).
std::size_t usable_upstreams(const generation& gen);
inline bool any_upstream_usable(const generation& gen) { return usable_upstreams(gen) > 0; }

}  // namespace nines::gateway
