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

json::value optional_number(const std::optional<double>& v, double scale = 1) {
  return v ? json::value(round3(*v * scale)) : json::value(nullptr);
}

json::object sla_json(const dashboard_report& d, bool series) {
  json::object windows;
  for (const auto& w : d.windows) {
    windows[w.name] = json::object{{"availability", optional_number(w.value.availability)},
                                   {"good", w.value.good},
                                   {"bad", w.value.bad},
                                   {"ttft_p50_ms", optional_number(w.value.ttft_p50_s, 1000)},
                                   {"ttft_p99_ms", optional_number(w.value.ttft_p99_s, 1000)}};
  }
  json::array incidents;
  for (const auto& i : d.incidents) {
    incidents.push_back(json::object{{"unix_ms", i.unix_ms},
                                     {"kind", i.kind},
                                     {"upstream", i.upstream},
                                     {"message", i.message}});
  }
  json::array alerts;
  for (const auto& a : d.alerts) {
    json::object labels;
    for (const auto& [k, v] : a.labels) {
      labels[k] = v;
    }
    alerts.push_back(json::object{{"name", a.name}, {"labels", std::move(labels)}, {"summary", a.summary}});
  }
  json::object out{{"unix_ms", d.unix_ms},
                   {"objective", d.objective},
                   {"windows", std::move(windows)},
                   {"error_budget_left", optional_number(d.error_budget_left)},
                   {"alerts", std::move(alerts)},
                   {"incidents", std::move(incidents)}};
  if (series) {
    // Columns, oldest first: seconds before now, requests/s, availability, TTFT p50 and p99 (ms).
    json::array age, rps, availability, p50, p99;
    for (const auto& p : d.series) {
      age.push_back(round3(p.age_s));
      rps.push_back(round3(p.requests_per_second));
      availability.push_back(p.availability ? json::value(*p.availability) : json::value(nullptr));
      p50.push_back(optional_number(p.ttft_p50_s, 1000));
      p99.push_back(optional_number(p.ttft_p99_s, 1000));
    }
    out["series"] = json::object{{"bucket_s", d.bucket_seconds},
                                 {"age_s", std::move(age)},
                                 {"requests_per_second", std::move(rps)},
                                 {"availability", std::move(availability)},
                                 {"ttft_p50_ms", std::move(p50)},
                                 {"ttft_p99_ms", std::move(p99)}};
  }
  return out;
}

std::string status_json(const shared_state& shared, bool series) {
  const auto gen = shared.current.load();
  const auto dashboard = shared.dashboard.load();
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
        {"sla", dashboard && i < dashboard->upstreams.size()
                    ? json::value(json::object{
                          {"availability_5m", optional_number(dashboard->upstreams[i].availability_5m)},
                          {"attempts_5m", dashboard->upstreams[i].attempts_5m},
                          {"ttft_p50_ms", optional_number(dashboard->upstreams[i].ttft_p50_s, 1000)},
                          {"ttft_p99_ms", optional_number(dashboard->upstreams[i].ttft_p99_s, 1000)},
                          {"error_rate_1m", optional_number(dashboard->upstreams[i].error_rate_1m)}})
                    : json::value(nullptr)},
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
  const auto journal = shared.journal->read_stats();
  const auto names = core::names_of(cfg.role);
  // Bodies sent to uplinks as tus uploads (an edge's), and uploads kept for clients (a gateway's
  // with [uploads]): what a cut cost, in bytes.
  json::object uploads;
  const auto& metrics = *shared.metrics;
  json::object sent;
  for (const char* result : {"ready", "resumed", "inline", "failed"}) {
    sent[result] = metrics.value("nines_edge_uploads_total", {{"result", result}});
  }
  uploads["sent_to_uplinks"] = json::object{
      {"bodies", std::move(sent)},
      {"bytes_sent", metrics.value("nines_edge_upload_bytes_total", {{"kind", "sent"}})},
      {"bytes_resent", metrics.value("nines_edge_upload_bytes_total", {{"kind", "resent"}})}};
  if (shared.uploads) {
    const auto held = shared.uploads->read_stats();
    uploads["kept"] = json::object{{"uploads", held.uploads},
                                   {"stored_bytes", held.stored_bytes},
                                   {"declared_bytes", held.declared_bytes},
                                   {"bytes_received_kept", shared.uploads->bytes_kept()},
                                   {"bytes_received_refused", shared.uploads->bytes_refused()},
                                   {"resumed_appends", shared.uploads->resumed_appends()}};
  }
  // The answer cache ([cache]): null when off.
  json::value cache = nullptr;
  if (shared.cache) {
    const auto held = shared.cache->read_stats();
    json::object requests;
    for (const char* result : {"hit", "shared", "miss", "bypass"}) {
      requests[result] = metrics.value("nines_cache_requests_total", {{"result", result}});
    }
    cache = json::object{{"requests", std::move(requests)},
                         {"entries", held.entries},
                         {"bytes", held.bytes},
                         {"max_bytes", shared.cache->settings().max_bytes},
                         {"stored", held.stored},
                         {"evicted", held.evicted},
                         {"expired", held.expired},
                         {"too_large", held.too_large},
                         {"cleared", held.cleared}};
  }
  json::object out{
      {"role", names.role},
      {"devices", shared.keeps_devices},
      {"version", NINES_VERSION},
      {"uptime_s", round3(std::chrono::duration<double>(now - shared.started).count())},
      {"config_version", gen->version},
      {"workers", shared.workers},
      {"ready", any_upstream_usable(*gen)},
      {"tier",
       json::object{{"active_priority", routing && routing->active_priority
                                            ? json::value(*routing->active_priority)
                                            : json::value(nullptr)},
                    {"switches", report ? report->tier_switches : 0},
                    {"tiers", std::move(tiers)}}},
      // "uplinks" on an edge: what it sends to are its uplinks, with the same fields.
      {names.links, std::move(upstreams)},
      {"resumes", shared.resumes.load(std::memory_order_relaxed)},
      {"uploads", std::move(uploads)},
      {"cache", std::move(cache)},
      {"sla", dashboard ? json::value(sla_json(*dashboard, series)) : json::value(nullptr)},
      {"journal", json::object{{"bytes", journal.bytes},
                               {"entries", journal.entries},
                               {"max_bytes", cfg.journal.max_bytes}}}};
  return json::serialize(out);
}

}  // namespace nines::gateway
