#include "gateway/status.hpp"

#include <boost/json.hpp>

namespace nines::gateway {
namespace {

namespace json = boost::json;
using steady = std::chrono::steady_clock;

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

std::size_t usable_upstreams(const generation& gen) {
  const auto routing = gen.routing.load();
  const auto now = steady::now();
  std::size_t usable = 0;
  for (std::size_t i = 0; i < gen.live.size(); ++i) {
    const bool healthy = !routing || i >= routing->upstreams.size() ||
                         (routing->upstreams[i].healthy &&
                          routing->upstreams[i].breaker != core::breaker_state::open);
    usable += healthy && gen.live.available(i, now) ? 1 : 0;
  }
  return usable;
}

std::string status_json(const worker_state& worker) {
  const auto gen = worker.shared->current.load();
  const auto& cfg = *gen->config;
  const auto routing = gen->routing.load();
  const auto report = gen->report.load();
  const auto now = steady::now();
  json::object upstreams;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    const auto& live = gen->live[i];
    const upstream_route_state route =
        routing && i < routing->upstreams.size() ? routing->upstreams[i] : upstream_route_state{};
    const upstream_report rep =
        report && i < report->upstreams.size() ? report->upstreams[i] : upstream_report{};
    const bool cooling = !gen->live.available(i, now);
    std::string state = !route.healthy                                        ? "unhealthy"
                        : route.breaker == core::breaker_state::open      ? "ejected"
                        : route.breaker == core::breaker_state::half_open ? "half_open"
                        : cooling                                         ? "cooling"
                                                                          : "healthy";
    json::object probe{{"probed", rep.probed},
                       {"probes", rep.probes},
                       {"rtt_ewma_ms", round3(rep.link.rtt_ewma_ms)},
                       {"rtt_p99_ms", round3(rep.link.rtt_p99_ms)},
                       {"rtt_min_ms", round3(rep.link.rtt_min_ms)},
                       {"loss", round3(rep.link.loss)},
                       {"jitter_ms", round3(rep.link.jitter_ms)},
                       {"rtt_level", core::to_string(rep.link.rtt_level)},
                       {"loss_level", core::to_string(rep.link.loss_level)},
                       {"jitter_level", core::to_string(rep.link.jitter_level)},
                       {"level", core::to_string(rep.link.overall())},
                       {"last_error", rep.last_probe_error}};
    upstreams[u.name] = json::object{
        {"url", u.url},
        {"priority", u.priority},
        {"weight", u.weight},
        {"state", state},
        {"healthy", route.healthy},
        {"breaker", core::to_string(route.breaker)},
        {"score", round3(route.score)},
        {"tier_in_use", routing && routing->active_priority == u.priority},
        {"panic", route.panic},
        {"cooling", cooling},
        {"probe", std::move(probe)},
        {"in_flight", live.in_flight.load(std::memory_order_relaxed)},
        {"max_requests", u.max_requests},
        {"ejections", rep.ejections},
        {"ejected_for_ms", round3(rep.open_for_ms)},
        {"last_ejection_reason", rep.ejection_reason},
        {"failure_rate", round3(rep.failure_rate)},
        {"pool", json::object{{"open", live.open_connections.load(std::memory_order_relaxed)},
                              {"idle", live.idle_connections.load(std::memory_order_relaxed)},
                              {"pending", live.pending_requests.load(std::memory_order_relaxed)}}}};
  }
  json::array tiers;
  if (report) {
    for (int t : report->tiers) {
      tiers.push_back(t);
    }
  }
  const auto journal = worker.shared->journal->read_stats();
  json::object out{
      {"version", NINES_VERSION},
      {"uptime_s", round3(std::chrono::duration<double>(now - worker.shared->started).count())},
      {"config_version", gen->version},
      {"workers", worker.shared->workers},
      {"ready", any_upstream_usable(*gen)},
      {"tier",
       json::object{{"active_priority", routing && routing->active_priority
                                            ? json::value(*routing->active_priority)
                                            : json::value(nullptr)},
                    {"switches", report ? report->tier_switches : 0},
                    {"tiers", std::move(tiers)}}},
      {"upstreams", std::move(upstreams)},
      {"journal", json::object{{"bytes", journal.bytes},
                               {"entries", journal.entries},
                               {"max_bytes", cfg.journal.max_bytes}}}};
  return json::serialize(out);
}

}  // namespace nines::gateway
