#pragma once
// Everything one gateway worker thread owns, and what it shares read-only with the others.
//
// shared_state is built once at startup and never mutated afterwards except through its atomics
// (upstream_health); workers read it without locks. worker_state belongs to one worker thread.

#include <memory>
#include <vector>

#include "core/config.hpp"
#include "core/random.hpp"
#include "core/stream_journal.hpp"
#include "core/upstream_cooldown.hpp"
#include "gateway/upstream_health.hpp"
#include "net/upstream_pool.hpp"
#include "obs/access_log.hpp"
#include "obs/gateway_probe.hpp"
#include "obs/metrics.hpp"

namespace nines::gateway {

struct shared_state {
  std::shared_ptr<const core::config> config;
  std::vector<net::upstream_target> targets;  // index-aligned with config->upstreams
  upstream_health health;
  core::cooldown_policy cooldown{};
  std::shared_ptr<obs::access_log_sink> access_log;
  std::unique_ptr<obs::registry> metrics;        // one shard per worker
  std::unique_ptr<core::stream_journal> journal;  // journaled requests, every worker's

  explicit shared_state(std::size_t upstreams) : health(upstreams) {}
};

struct worker_state {
  unsigned index;
  std::shared_ptr<shared_state> shared;
  std::vector<net::upstream_pool> pools;  // index-aligned with config->upstreams
  core::splitmix_rng random;
  obs::access_log_buffer access_log;
  obs::gateway_probe probe;
  std::uint64_t next_request_number = 0;

  worker_state(unsigned worker_index, std::shared_ptr<shared_state> state, std::uint64_t seed);
};

}  // namespace nines::gateway
