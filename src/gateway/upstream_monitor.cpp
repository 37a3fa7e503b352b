#include "gateway/upstream_monitor.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/health/health_score.hpp"
#include "net/spawn.hpp"
#include "net/upstream_response.hpp"

namespace nines::gateway {

using namespace net;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds tick_period{100};

std::string_view state_name(const upstream_route_state& r, bool cooling) {
  if (!r.healthy) {
    return "unhealthy";
  }
  if (r.breaker == core::breaker_state::open) {
    return "ejected";
  }
  if (r.breaker == core::breaker_state::half_open) {
    return "half_open";
  }
  return cooling ? "cooling" : "healthy";
}

constexpr std::string_view all_states[] = {"healthy", "unhealthy", "ejected", "half_open", "cooling"};

}  // namespace

struct upstream_monitor::upstream_state {
  std::string identity;
  std::string name;
  std::string request;  // the probe's bytes
  core::link_quality link;
  bool healthy = true;
  bool probed = false;
  std::string last_error;
  std::uint64_t probes = 0;
  std::shared_ptr<upstream_pool> pool;
  asio::steady_timer timer;
  core::splitmix_rng random;
  core::breaker_state last_breaker = core::breaker_state::closed;
  core::sla_history recent{std::chrono::seconds(10), 30};  // its attempts, the last 5 minutes
  std::uint64_t probes_ok_since_tick = 0;  // count as half-open trials
  std::uint64_t probes_failed_since_tick = 0;
  // Metrics.
  obs::counter* probes_ok = nullptr;
  obs::counter* probes_failed = nullptr;
  obs::counter* ejections = nullptr;
  obs::histogram* probe_rtt = nullptr;
  obs::gauge* score = nullptr;
  obs::gauge* rtt_ewma = nullptr;
  obs::gauge* rtt_p99 = nullptr;
  obs::gauge* loss = nullptr;
  obs::gauge* jitter = nullptr;
  obs::gauge* up = nullptr;
  obs::gauge* in_flight = nullptr;
  obs::gauge* open_connections = nullptr;
  obs::gauge* pending_requests = nullptr;
  obs::gauge* idle_connections = nullptr;
  obs::gauge* certificate_expiry = nullptr;  // TLS upstreams: seconds left on the leaf
  std::vector<obs::gauge*> states;  // one-hot, in the order of all_states

  upstream_state(asio::io_context& ctx, std::size_t window, std::uint64_t seed)
      : link(window), timer(ctx), random(seed) {}
};

upstream_monitor::upstream_monitor(asio::io_context& context, std::shared_ptr<shared_state> shared,
                                   std::string external_url)
    : context_(context), shared_(std::move(shared)), external_url_(std::move(external_url)) {}

void upstream_monitor::note(std::string kind, std::string upstream, std::string message) {
  incident i;
  i.unix_ms = std::chrono::duration_cast<milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  i.kind = std::move(kind);
  i.upstream = std::move(upstream);
  i.message = std::move(message);
  incidents_.push_front(std::move(i));
  while (incidents_.size() > 200) {
    incidents_.pop_back();
  }
  report_due_ = true;  // /status and the dashboard show it at the next tick, not a second later
}

upstream_monitor::~upstream_monitor() = default;

void upstream_monitor::start() { adopt(shared_->current.load()); }

void upstream_monitor::adopt(std::shared_ptr<generation> next) {
  ++epoch_;
  const auto& cfg = *next->config;
  if (!alerts_) {
    alerts_ = std::make_unique<core::alert_evaluator>(cfg.alerting.rules);
    notifier_ = std::make_unique<alert_notifier>(context_, cfg.alerting, *shared_->metrics,
                                                 shared_->workers, external_url_);
  } else {
    alerts_->reconfigure(cfg.alerting.rules);
    notifier_->set_config(cfg.alerting);
    note("reload", "", fmt::format("configuration version {} applied", next->version));
  }
  std::vector<std::shared_ptr<upstream_state>> states;
  auto& metrics = *shared_->metrics;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    std::shared_ptr<upstream_state> kept;
    for (auto& old : upstreams_) {
      if (old->identity == next->identities[i]) {
        kept = old;
      }
    }
    if (!kept) {
      kept = std::make_shared<upstream_state>(context_, cfg.health.window, 7919 * (i + 1));
      kept->identity = next->identities[i];
      net::pool_settings ps;
      ps.max_idle = 1;
      ps.connect_timeout = cfg.health.timeout;
      kept->pool = std::make_shared<upstream_pool>(context_.get_executor(), next->targets[i], ps);
    }
    kept->name = u.name;
    const bool default_port = u.port == (u.tls ? 443 : 80);
    const auto path = u.health_path.empty() ? cfg.health.path : u.health_path;
    kept->request = fmt::format("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: nines-health/{}\r\n\r\n",
                                path, default_port ? u.host : fmt::format("{}:{}", u.host, u.port),
                                NINES_VERSION);
    const obs::labels l{{"upstream", u.name}};
    kept->probes_ok = &metrics.counter_of("nines_upstream_probes_total",
                                          "Active health probes, by upstream and result.",
                                          {{"upstream", u.name}, {"result", "ok"}});
    kept->probes_failed = &metrics.counter_of("nines_upstream_probes_total",
                                              "Active health probes, by upstream and result.",
                                              {{"upstream", u.name}, {"result", "failed"}});
    kept->ejections = &metrics.counter_of("nines_upstream_ejections_total",
                                          "Ejections by outlier detection (breaker opened).", l);
    kept->probe_rtt = &metrics.histogram_of("nines_upstream_probe_rtt_seconds",
                                            "Round-trip time of successful health probes.",
                                            obs::latency_buckets(), l);
    kept->score = &metrics.gauge_of("nines_upstream_health_score",
                                    "Health score in [0, 1] (docs/routing.md).", l);
    kept->rtt_ewma = &metrics.gauge_of("nines_upstream_rtt_ewma_seconds",
                                       "Probe round-trip time, moving average.", l);
    kept->rtt_p99 = &metrics.gauge_of("nines_upstream_rtt_p99_seconds",
                                      "Probe round-trip time, p99 over the probe window.", l);
    kept->loss = &metrics.gauge_of("nines_upstream_probe_loss_ratio",
                                   "Failed probes / probes over the probe window.", l);
    kept->jitter = &metrics.gauge_of("nines_upstream_jitter_seconds",
                                     "Mean absolute difference of successive probe RTTs.", l);
    kept->certificate_expiry =
        u.tls ? &metrics.gauge_of("nines_upstream_certificate_expiry_seconds",
                                  "Seconds until the certificate a TLS upstream presented to the "
                                  "last probe expires (negative once it has).",
                                  l)
              : nullptr;
    kept->up = &metrics.gauge_of("nines_upstream_up",
                                 "1 when active probes say the upstream is healthy.", l);
    kept->in_flight = &metrics.gauge_of("nines_upstream_in_flight",
                                        "Attempts in flight to the upstream, all workers.", l);
    kept->open_connections = &metrics.gauge_of(
        "nines_upstream_connections", "Connections to the upstream, all workers, by state.",
        {{"upstream", u.name}, {"state", "open"}});
    kept->idle_connections = &metrics.gauge_of(
        "nines_upstream_connections", "Connections to the upstream, all workers, by state.",
        {{"upstream", u.name}, {"state", "idle"}});
    kept->pending_requests = &metrics.gauge_of(
        "nines_upstream_pending_requests",
        "Requests waiting for a connection to the upstream (its pool at max_connections).", l);
    kept->states.clear();
    for (auto s : all_states) {
      kept->states.push_back(&metrics.gauge_of(
          "nines_upstream_state", "1 for the state each upstream is in (the others 0).",
          {{"upstream", u.name}, {"state", std::string(s)}}));
    }
    kept->last_breaker = core::breaker_state::closed;
    states.push_back(kept);
  }
  // Upstreams that are gone: their loops stop with the old epoch; their gauges read 0.
  for (auto& old : upstreams_) {
    if (std::find(states.begin(), states.end(), old) == states.end()) {
      old->timer.cancel();
      for (auto* g : old->states) {
        g->set(0);
      }
      old->up->set(0);
    }
  }
  upstreams_ = std::move(states);
  priorities_.clear();
  for (const auto& u : cfg.upstreams) {
    priorities_.push_back(u.priority);
  }
  std::sort(priorities_.begin(), priorities_.end());
  priorities_.erase(std::unique(priorities_.begin(), priorities_.end()), priorities_.end());
  if (tiers_) {
    switches_before_ += tiers_->switches();
  }
  detector_ = std::make_unique<core::outlier_detector>(cfg.outlier, cfg.upstreams.size());
  tiers_ = std::make_unique<core::tier_selector>(priorities_.size(), cfg.routing.tiers, steady::now());
  gen_ = std::move(next);
  tick(steady::now());  // publish at once: requests must never find no snapshot
  if (cfg.health.enabled) {
    for (auto& s : upstreams_) {
      s->timer.cancel();  // an older loop on a kept upstream ends
      spawn(context_.get_executor(), probe_loop(s, epoch_), "health probe");
    }
  }
  if (!tick_timer_) {
    tick_timer_ = std::make_unique<asio::steady_timer>(context_);
  }
  tick_timer_->cancel();
  spawn(context_.get_executor(), tick_loop(epoch_), "health tick");
}

void upstream_monitor::stop() {
  stopped_ = true;
  ++epoch_;
  if (tick_timer_) {
    tick_timer_->cancel();
  }
  for (auto& s : upstreams_) {
    s->timer.cancel();
  }
  upstreams_.clear();
}

std::size_t upstream_monitor::index_of(const upstream_state& s) const {
  for (std::size_t i = 0; i < upstreams_.size(); ++i) {
    if (upstreams_[i].get() == &s) {
      return i;
    }
  }
  return SIZE_MAX;
}

namespace {
// The seconds left on the leaf certificate of a TLS connection; none for plain ones.
std::optional<double> certificate_seconds_left(upstream_connection& conn) {
  return conn.visit([](auto& stream) -> std::optional<double> {
    if constexpr (std::is_same_v<std::decay_t<decltype(stream)>, upstream_connection::tls_stream>) {
      const X509* leaf = SSL_get0_peer_certificate(stream.native_handle());
      int days = 0;
      int seconds = 0;
      if (leaf == nullptr ||
          ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(leaf)) != 1) {
        return std::nullopt;
      }
      return static_cast<double>(days) * 86400 + seconds;
    } else {
      return std::nullopt;
    }
  });
}
}  // namespace

awaitable<void> upstream_monitor::probe_loop(std::shared_ptr<upstream_state> s, std::uint64_t epoch) {
  const auto& cfg = *gen_->config;
  const auto interval = cfg.health.interval;
  const auto jitter = cfg.health.jitter;
  const auto timeout = cfg.health.timeout;
  const auto thresholds = cfg.health.thresholds;
  while (!stopped_ && epoch == epoch_) {
    const auto start = steady::now();
    std::string error;
    auto outcome = co_await s->pool->acquire(timeout);
    if (outcome.connection) {
      auto& conn = *outcome.connection;
      if (s->certificate_expiry != nullptr) {
        if (const auto left = certificate_seconds_left(conn)) {
          s->certificate_expiry->set(*left);
        }
      }
      conn.expires_after(timeout);
      const std::array<asio::const_buffer, 1> wire{asio::buffer(s->request)};
      auto [wec, wn] = co_await conn.write(wire);
      whole_response answer;
      answer.error = wec;
      if (!wec) {
        answer = co_await read_whole_response(conn, false, 64 * 1024);
      }
      const auto& rec = answer.error;
      if (rec) {
        error = rec == beast::error::timeout ? "timed out"
                : answer.problem.empty()     ? rec.message()
                                             : answer.problem;
      } else if (answer.status / 100 != 2) {
        error = fmt::format("status {}", answer.status);
      }
      if (!answer.reusable) {
        conn.close();
      } else {
        s->pool->give_back(std::move(outcome.connection), steady::now());
      }
    } else {
      error = outcome.error ? outcome.why() : "cannot connect";
    }
    if (stopped_ || epoch != epoch_) {
      break;
    }
    ++s->probes;
    s->probed = true;
    if (error.empty()) {
      ++s->probes_ok_since_tick;
      if (const auto i = index_of(*s); i < gen_->live.size()) {
        gen_->live.record_probe_success(i);
      }
      s->link.record_success(steady::now() - start);
      s->probes_ok->add(shared_->workers);
      s->probe_rtt->observe(shared_->workers, std::chrono::duration<double>(steady::now() - start).count());
      s->last_error.clear();
    } else {
      ++s->probes_failed_since_tick;
      s->link.record_failure();
      s->probes_failed->add(shared_->workers);
      s->last_error = error;
    }
    const bool was = s->healthy;
    s->healthy = core::next_active_health(was, s->link.consecutive_successes(),
                                          s->link.consecutive_failures(), thresholds);
    if (was != s->healthy) {
      spdlog::warn("upstream {} is {} (active probes: {})", s->name,
                   s->healthy ? "healthy again" : "unhealthy",
                   s->healthy ? "answering" : s->last_error);
      note(s->healthy ? "healthy" : "unhealthy", s->name,
           s->healthy ? "probes answer again" : "probes fail: " + s->last_error);
    }
    const auto spread = jitter.count() > 0
                            ? static_cast<std::int64_t>(s->random.below(2 * jitter.count() + 1)) -
                                  jitter.count()
                            : 0;
    s->timer.expires_after(interval + milliseconds(spread));
    co_await s->timer.async_wait(use_nothrow);
  }
}

awaitable<void> upstream_monitor::tick_loop(std::uint64_t epoch) {
  while (!stopped_ && epoch == epoch_) {
    tick_timer_->expires_after(tick_period);
    co_await tick_timer_->async_wait(use_nothrow);
    if (stopped_ || epoch != epoch_) {
      break;
    }
    tick(steady::now());
  }
}

void upstream_monitor::tick(steady::time_point now) {
  auto& gen = *gen_;
  const auto& cfg = *gen.config;
  const std::size_t n = cfg.upstreams.size();
  std::vector<core::traffic_report> traffic(n);
  for (std::size_t i = 0; i < n; ++i) {
    traffic[i] = gen.live.take_report(i);
    auto& s = *upstreams_[i];
    if (detector_->state(i) == core::breaker_state::half_open) {
      // Probes answered while half-open count as trials (Envoy un-ejects on a successful active
      // check): an upstream in a tier that takes no traffic must have a way back too.
      traffic[i].trial_successes += s.probes_ok_since_tick;
      traffic[i].trial_failures += s.probes_failed_since_tick;
    }
    s.probes_ok_since_tick = 0;
    s.probes_failed_since_tick = 0;
  }
  detector_->tick(traffic, now);
  auto routing = std::make_shared<routing_snapshot>();
  auto report = std::make_shared<health_report>();
  routing->upstreams.resize(n);
  report->upstreams.resize(n);
  std::vector<bool> usable(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto& s = *upstreams_[i];
    const auto breaker = detector_->state(i);
    if (breaker == core::breaker_state::open && s.last_breaker != core::breaker_state::open) {
      gen.live.forgive(i);
      s.ejections->add(shared_->workers);
      spdlog::warn("upstream {} ejected for {} ms: {}", s.name,
                   std::chrono::duration_cast<milliseconds>(detector_->open_until(i) - now).count(),
                   detector_->last_reason(i));
      note("ejected", s.name,
           fmt::format("ejected for {} s: {}",
                       std::chrono::duration_cast<std::chrono::seconds>(detector_->open_until(i) - now).count(),
                       detector_->last_reason(i)));
    } else if (breaker == core::breaker_state::half_open &&
               s.last_breaker != core::breaker_state::half_open) {
      gen.live.forgive(i);  // attempts that failed while it was out do not count against it
    } else if (breaker == core::breaker_state::closed &&
               s.last_breaker == core::breaker_state::half_open) {
      spdlog::info("upstream {} readmitted: its half-open trials succeeded", s.name);
      note("readmitted", s.name, "half-open trials succeeded");
    }
    s.last_breaker = breaker;
    const auto link = s.link.report(cfg.health.alerts);
    const auto& live = gen.live[i];
    core::score_inputs in;
    in.rtt_ewma_ms = s.probed ? link.rtt_ewma_ms : 0;
    in.loss = link.loss;
    in.jitter_ms = link.jitter_ms;
    // The error rate counts in proportion to the evidence: a few failed attempts (an upstream that
    // got little traffic, say because it is in a tier not in use) say less than many.
    const double evidence = std::min(1.0, static_cast<double>(detector_->window_attempts(i)) /
                                              std::max(1U, cfg.outlier.failure_rate_min_requests));
    in.error_rate = detector_->failure_rate(i) * evidence;
    in.in_flight = live.in_flight.load(std::memory_order_relaxed);
    in.max_requests = cfg.upstreams[i].max_requests;
    in.missed_probes = s.link.consecutive_failures();
    auto& route = routing->upstreams[i];
    route.healthy = !cfg.health.enabled || s.healthy;
    route.breaker = breaker;
    route.score = core::health_score(in);
    const bool cooling = !gen.live.available(i, now);
    usable[i] = route.healthy && breaker == core::breaker_state::closed && !cooling;
    auto& r = report->upstreams[i];
    r.link = link;
    r.probed = s.probed;
    r.last_probe_error = s.last_error;
    r.probes = s.probes;
    r.ejections = detector_->ejections_total(i);
    r.failure_rate = detector_->failure_rate(i);
    r.ejection_reason = detector_->last_reason(i);
    if (breaker == core::breaker_state::open) {
      r.open_for_ms = std::chrono::duration<double, std::milli>(detector_->open_until(i) - now).count();
    }
    // Gauges.
    s.score->set(route.score);
    s.rtt_ewma->set(link.rtt_ewma_ms / 1000);
    s.rtt_p99->set(link.rtt_p99_ms / 1000);
    s.loss->set(link.loss);
    s.jitter->set(link.jitter_ms / 1000);
    s.up->set(route.healthy ? 1 : 0);
    s.in_flight->set(in.in_flight);
    s.open_connections->set(live.open_connections.load(std::memory_order_relaxed));
    s.idle_connections->set(live.idle_connections.load(std::memory_order_relaxed));
    s.pending_requests->set(live.pending_requests.load(std::memory_order_relaxed));
    const auto name = state_name(route, cooling);
    for (std::size_t k = 0; k < s.states.size(); ++k) {
      s.states[k]->set(all_states[k] == name ? 1 : 0);
    }
  }
  // The tier in use, with hysteresis, and panic where too few upstreams are usable.
  std::vector<double> best(priorities_.size(), -1.0);
  for (std::size_t t = 0; t < priorities_.size(); ++t) {
    std::size_t members = 0;
    std::size_t up = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (cfg.upstreams[i].priority != priorities_[t]) {
        continue;
      }
      ++members;
      if (usable[i]) {
        ++up;
        best[t] = std::max(best[t], routing->upstreams[i].score);
      }
    }
    const bool panic =
        members > 0 && static_cast<double>(up) < cfg.routing.panic_threshold * static_cast<double>(members) &&
        up < members;
    for (std::size_t i = 0; i < n; ++i) {
      if (cfg.upstreams[i].priority == priorities_[t]) {
        routing->upstreams[i].panic = panic;
      }
    }
    shared_->metrics
        ->gauge_of("nines_tier_panic", "1 while a tier has too few usable upstreams and spreads "
                   "its load over all of them.",
                   {{"priority", std::to_string(priorities_[t])}})
        .set(panic ? 1 : 0);
  }
  const auto before = tiers_->current();
  const auto current = tiers_->update(best, now);
  if (current != before) {
    spdlog::warn("tier switch: priority {} -> {}", priorities_[before], priorities_[current]);
    note("tier_switch", "",
         fmt::format("traffic moved from priority {} to priority {}", priorities_[before],
                     priorities_[current]));
  }
  routing->active_priority = priorities_.empty() ? std::nullopt : std::optional<int>(priorities_[current]);
  report->tier_switches = switches_before_ + tiers_->switches();
  report->tiers = priorities_;
  shared_->metrics
      ->gauge_of("nines_tier_active_priority", "The priority of the tier taking the traffic.")
      .set(routing->active_priority.value_or(0));
  auto& switches = shared_->metrics->counter_of(
      "nines_tier_switches_total", "Changes of the tier taking the traffic (with hysteresis).");
  if (report->tier_switches > switches.value()) {
    switches.add(shared_->workers, report->tier_switches - switches.value());
  }
  collect_sla(now, traffic);
  if (now >= next_evaluation_) {
    next_evaluation_ = now + cfg.alerting.evaluation_interval;
    evaluate_alerts(now, *routing);
  }
  gen.routing.store(std::move(routing));
  gen.report.store(std::move(report));
  if (now >= next_report_ || report_due_) {
    next_report_ = now + std::chrono::seconds(1);
    report_due_ = false;
    publish_dashboard(now);
  }
}

void upstream_monitor::collect_sla(steady::time_point now,
                                   const std::vector<core::traffic_report>& traffic) {
  std::uint64_t good = 0;
  std::uint64_t bad = 0;
  core::sla_history::ttft_counts ttft{};
  for (unsigned w = 0; w < shared_->workers; ++w) {
    auto& shard = shared_->sla[w];
    good += shard.good.exchange(0, std::memory_order_relaxed);
    bad += shard.bad.exchange(0, std::memory_order_relaxed);
    for (std::size_t b = 0; b < ttft.size(); ++b) {
      ttft[b] += shard.ttft[b].exchange(0, std::memory_order_relaxed);
    }
  }
  history_.add(now, good, bad, ttft);
  for (std::size_t i = 0; i < upstreams_.size() && i < traffic.size(); ++i) {
    const auto& t = traffic[i];
    upstreams_[i]->recent.add(now, t.successes, t.gateway_failures + t.connect_failures,
                              gen_->live.take_ttft(i));
  }
  const auto resumes = shared_->resumes.load(std::memory_order_relaxed);
  if (resumes > resumes_seen_ && now >= next_report_) {
    note("resumed", "", fmt::format("{} stream{} continued on another upstream",
                                    resumes - resumes_seen_, resumes - resumes_seen_ == 1 ? "" : "s"));
    resumes_seen_ = resumes;
  }
}

void upstream_monitor::evaluate_alerts(steady::time_point now, const routing_snapshot& routing) {
  std::vector<core::upstream_condition> conditions;
  for (std::size_t i = 0; i < upstreams_.size() && i < routing.upstreams.size(); ++i) {
    const auto& r = routing.upstreams[i];
    const bool ejected = r.breaker == core::breaker_state::open;
    conditions.push_back({upstreams_[i]->name, !r.healthy || ejected,
                          !r.healthy ? "unhealthy (probes fail)" : "ejected (outlier detection)"});
  }
  const auto changes = alerts_->evaluate(history_, conditions, now);
  for (const auto& a : changes) {
    const auto upstream = a.labels.contains("upstream") ? a.labels.at("upstream") : std::string();
    note(a.firing ? "alert" : "resolved", upstream, a.name + ": " + a.summary);
    obs::labels l{{"alertname", a.name}};
    for (const auto& [k, v] : a.labels) {
      if (k != "alertname") {
        l.emplace_back(k, v);
      }
    }
    shared_->metrics->gauge_of("nines_alerts_firing", "1 while a built-in alert fires.", l)
        .set(a.firing ? 1 : 0);
  }
  notifier_->changed(changes);
  notifier_->still_firing(alerts_->firing(), now);
}

void upstream_monitor::publish_dashboard(steady::time_point now) {
  const auto& cfg = *gen_->config;
  auto r = std::make_shared<dashboard_report>();
  r->unix_ms = std::chrono::duration_cast<milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  r->objective = cfg.alerting.rules.objective;
  using std::chrono::hours;
  using std::chrono::minutes;
  for (const auto& [name, span] : {std::pair{"5m", std::chrono::seconds(minutes(5))},
                                   std::pair{"1h", std::chrono::seconds(hours(1))},
                                   std::pair{"24h", std::chrono::seconds(hours(24))}}) {
    r->windows.push_back({name, history_.over(now, span)});
  }
  const auto& day = r->windows.back().value;
  if (day.good + day.bad > 0) {
    const double budget = (1 - r->objective) * static_cast<double>(day.good + day.bad);
    r->error_budget_left = 1 - static_cast<double>(day.bad) / std::max(budget, 1e-9);
  }
  r->series = history_.series(now, std::chrono::hours(1));
  r->bucket_seconds = static_cast<double>(history_.bucket_length().count());
  for (std::size_t k = 0; k < incidents_.size() && k < 100; ++k) {
    r->incidents.push_back(incidents_[k]);
  }
  r->alerts = alerts_->firing();
  for (std::size_t i = 0; i < upstreams_.size(); ++i) {
    const auto w = upstreams_[i]->recent.over(now, std::chrono::minutes(5));
    upstream_sla u;
    u.availability_5m = w.availability;
    u.ttft_p50_s = w.ttft_p50_s;
    u.ttft_p99_s = w.ttft_p99_s;
    u.attempts_5m = w.good + w.bad;
    const auto last_minute = upstreams_[i]->recent.over(now, std::chrono::minutes(1));
    if (last_minute.availability) {
      u.error_rate_1m = 1 - *last_minute.availability;
    }
    r->upstreams.push_back(u);
  }
  shared_->dashboard.store(std::move(r));
}

}  // namespace nines::gateway
