#pragma once
// Everything one gateway worker thread owns, and what it shares with the others.
//
// shared_state lives for the whole process: the metrics registry, the journal, the access-log
// sink, and the current `generation`. A generation is one version of the configuration and what
// was built from it (upstream targets, the live per-upstream atomics, the routing snapshot that
// the health monitor publishes); a reload publishes a new one. A request takes the generation
// current when it starts and keeps it to its end, so that a reload never pulls anything from under
// an in-flight request or stream. Shared data are immutable or atomics: workers read them without
// locks.
//
// worker_state belongs to one worker thread: its connection pools (rebuilt for a new generation,
// keeping the pools of upstreams that did not change), its random generator, its retry budget and
// tokens, its access-log buffer and metrics probe.

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/access/admission.hpp"
#include "core/cache/answer_cache.hpp"
#include "core/config/config.hpp"
#include "core/random.hpp"
#include "core/routing/hedge_policy.hpp"
#include "core/routing/retry_budget.hpp"
#include "core/routing/upstream_cooldown.hpp"
#include "core/stream/stream_journal.hpp"
#include "gateway/journal_store.hpp"
#include "gateway/shared_limits.hpp"
#include "gateway/sla.hpp"
#include "gateway/upload_store.hpp"
#include "gateway/upstream_credentials.hpp"
#include "gateway/upstream_live.hpp"
#include "net/upstream_pool.hpp"
#include "obs/access_log.hpp"
#include "obs/gateway_probe.hpp"
#include "obs/metrics.hpp"

namespace nines::gateway {

using asio_executor = net::asio::any_io_executor;

// What the health monitor decided about each upstream, for selection (index-aligned with the
// generation's upstreams).
struct upstream_route_state {
  bool healthy = true;  // active probes say so (or probing is off)
  core::breaker_state breaker = core::breaker_state::closed;
  double score = 1.0;
  bool panic = false;  // its tier has too few usable upstreams: health is ignored there
};

struct routing_snapshot {
  std::vector<upstream_route_state> upstreams;
  std::optional<int> active_priority;  // the tier in use
};

// What the monitor measured, for GET /status (and the dashboard).
struct upstream_report {
  core::link_report link;
  bool probed = false;  // at least one probe has been made
  std::string last_probe_error;
  std::uint64_t probes = 0;
  std::uint64_t ejections = 0;
  double failure_rate = 0;
  std::string ejection_reason;
  double open_for_ms = 0;  // time left of an ejection
};

struct health_report {
  std::vector<upstream_report> upstreams;
  std::uint64_t tier_switches = 0;
  std::vector<int> tiers;  // distinct priorities, best first
};

struct generation {
  std::uint64_t version = 0;
  std::shared_ptr<const core::config> config;
  std::vector<net::upstream_target> targets;  // index-aligned with config->upstreams
  std::vector<std::string> identities;         // what makes an upstream "the same" across reloads
  upstream_live live;
  // Index-aligned with the upstreams; null for one that takes no credential.
  std::vector<std::shared_ptr<upstream_credentials>> credentials;
  core::route_table routes;  // which requests may reach an upstream
  std::atomic<std::shared_ptr<const routing_snapshot>> routing;
  std::atomic<std::shared_ptr<const health_report>> report;

  explicit generation(std::size_t upstreams) : live(upstreams) {}
};

struct shared_state {
  std::atomic<std::shared_ptr<generation>> current;
  core::cooldown_policy cooldown{};
  std::shared_ptr<obs::access_log_sink> access_log;
  std::unique_ptr<obs::registry> metrics;        // one shard per worker (and one for the monitor)
  std::unique_ptr<core::stream_journal> journal;  // journaled requests, every worker's
  // The shared journal in Redis ([journal] store, gateway/journal_store.hpp); null when unset.
  std::unique_ptr<journal_store> shared_journal;
  // Client keys' limits across replicas, in the same Redis (auth.shared_limits); null when off.
  std::unique_ptr<shared_limits> limits;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  unsigned workers = 1;
  std::unique_ptr<sla_shard[]> sla;                 // one per worker
  std::atomic<std::uint64_t> resumes{0};            // streams resumed, for the incidents
  // Set when the drain ran out of time: the clients' relays of journaled streams end them with an
  // explicit, resumable break (gateway_draining) before the connections are closed.
  std::atomic<bool> cutting{false};
  std::atomic<std::shared_ptr<const dashboard_report>> dashboard;  // by the monitor, every second
  // The client keys in effect (auth mode keys); null when the gateway is open.
  std::atomic<std::shared_ptr<const core::key_registry>> keys;
  // The upstreams' credentials, kept across reloads (the control thread's).
  std::unique_ptr<credential_keeper> credentials;
  // tus uploads ([uploads], read at start); null when off.
  std::unique_ptr<upload_store> uploads;
  // Answers to identical requests at temperature 0 ([cache], read at start); null when off.
  std::unique_ptr<core::answer_cache> cache;
  // More of the /metrics exposition, from what the role hosts beside the request path (an edge's
  // device keeper); empty when nothing.
  std::function<std::string()> extra_metrics;
  bool keeps_devices = false;  // a device keeper runs beside (an edge's [devices]): /devices answers
};

// A worker's pools and per-upstream bookkeeping for one generation.
struct pool_set {
  std::uint64_t version = 0;
  std::vector<std::shared_ptr<net::upstream_pool>> pools;  // index-aligned with the upstreams
  std::vector<std::shared_ptr<core::retry_tokens>> retry_tokens;
  std::vector<std::shared_ptr<core::ttfb_window>> ttfb;    // for the hedge delay
};

// At most one log line per upstream and period, for lines that every request could repeat.
class per_upstream_log_limit {
 public:
  // True when a line about `upstream` (of `upstreams`) may be logged at `now`.
  bool allow(std::size_t upstream, std::size_t upstreams, std::chrono::steady_clock::time_point now,
             std::chrono::seconds period = std::chrono::seconds(10)) {
    if (last_.size() < upstreams) {
      last_.resize(upstreams);
    }
    if (upstream >= last_.size() ||
        (last_[upstream] != std::chrono::steady_clock::time_point{} &&
         now - last_[upstream] < period)) {
      return false;
    }
    last_[upstream] = now;
    return true;
  }

 private:
  std::vector<std::chrono::steady_clock::time_point> last_;
};

struct worker_state {
  unsigned index;
  asio_executor executor;              // the worker's io_context
  std::shared_ptr<shared_state> shared;
  std::shared_ptr<generation> gen;     // the generation these pools belong to
  std::shared_ptr<pool_set> pools;
  core::splitmix_rng random;
  obs::access_log_buffer access_log;
  // Log lines about an upstream that every request could repeat: at most one per upstream in
  // 10 s, per worker.
  per_upstream_log_limit tls_failure_logged;
  per_upstream_log_limit credential_refusal_logged;
  obs::gateway_probe probe;
  std::uint64_t next_request_number = 0;
  std::uint64_t active_requests = 0;   // for the retry budget
  std::uint64_t active_retries = 0;
  // This worker's calls for the shared limits (gateway/shared_limits.hpp); null when off.
  std::unique_ptr<limit_caller> limits;

  worker_state(unsigned worker_index, asio_executor worker_executor,
               std::shared_ptr<shared_state> state, std::uint64_t seed);

  // Follows the current generation: rebuilds the pools when it changed, keeping those of
  // upstreams that are the same. Call at the start of a request.
  void refresh();
};

// The identity of an upstream across reloads: its name and everything its connections depend on.
std::string upstream_identity(const core::upstream_config& u);

}  // namespace nines::gateway
