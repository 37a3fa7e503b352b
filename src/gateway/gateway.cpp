#include "gateway/gateway.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fstream>
#include <spdlog/spdlog.h>
#include <sstream>
#include <sys/resource.h>
#include <sys/stat.h>
#include <thread>

#include "devices/device_sidecar.hpp"
#include "devices/devices_admin.hpp"
#include "gateway/admin.hpp"
#include "gateway/file_stamp.hpp"
#include "gateway/keys_file.hpp"
#include "gateway/router.hpp"
#include "gateway/upload_endpoint.hpp"
#include "gateway/answer_cache_relay.hpp"
#include "gateway/upstream_monitor.hpp"
#include "net/server_group.hpp"
#include "net/spawn.hpp"
#include "obs/log_format.hpp"

namespace nines::gateway {
namespace {

using namespace net;
using steady = std::chrono::steady_clock;

// Every 100 ms until the worker drains: writes its buffered access-log lines, maintains its pools
// (closing stale idle connections, pre-warming) and publishes their sizes; every second, also drops
// the journal's expired entries.
awaitable<void> housekeeping(worker_state& worker, const std::atomic<bool>& draining) {
  for (unsigned tick = 0; !draining.load(std::memory_order_relaxed); ++tick) {
    co_await sleep_for(std::chrono::milliseconds(100));
    worker.access_log.flush();
    worker.refresh();
    const auto now = steady::now();
    for (std::size_t i = 0; i < worker.pools->pools.size(); ++i) {
      auto& pool = *worker.pools->pools[i];
      pool.maintain(now);
      const auto closes = pool.take_idle_closes();
      const auto& name = worker.gen->config->upstreams[i].name;
      if (closes.peer_closed > 0) {
        worker.probe.idle_connections_closed(name, "peer_closed", closes.peer_closed);
      }
      if (closes.unsolicited_bytes > 0) {
        worker.probe.idle_connections_closed(name, "unsolicited_bytes", closes.unsolicited_bytes);
      }
      const auto changes = pool.take_count_changes();
      auto& live = worker.gen->live[i];
      live.open_connections.fetch_add(static_cast<unsigned>(changes.open), std::memory_order_relaxed);
      live.idle_connections.fetch_add(static_cast<unsigned>(changes.idle), std::memory_order_relaxed);
      live.pending_requests.fetch_add(static_cast<unsigned>(changes.waiting),
                                      std::memory_order_relaxed);
    }
    if (tick % 10 == worker.index % 10) {
      worker.shared->journal->sweep(now);
      if (worker.shared->uploads) {
        worker.shared->uploads->sweep(now);
      }
      if (worker.shared->cache) {
        worker.shared->cache->sweep(now);
      }
    }
  }
}

// Metrics computed when scraped: the journal's size, the build.
void register_gauges(obs::registry& metrics, const core::stream_journal& journal) {
  const auto stat = [&journal](auto field) {
    return [&journal, field] { return static_cast<double>(journal.read_stats().*field); };
  };
  using stats = core::stream_journal::stats;
  metrics.gauge_function("nines_journal_bytes", "Bytes held by the journal (bounded by "
                         "journal.max_bytes).", {}, stat(&stats::bytes));
  metrics.gauge_function("nines_journal_entries", "Answers held by the journal.", {},
                         stat(&stats::entries));
  metrics.counter_function("nines_journal_evictions_total", "Journal entries dropped before "
                           "their ttl to stay within journal.max_bytes.", {}, stat(&stats::evicted));
  metrics.counter_function("nines_journal_events_dropped_total", "Events a running journaled "
                           "stream forgot to stay within journal.max_bytes.", {},
                           stat(&stats::events_dropped));
  metrics.counter_function("nines_escaped_exceptions_total",
                           "Exceptions that escaped a coroutine (bugs), each ending one connection "
                           "or task; the error log says which.",
                           {}, [] {
                             return static_cast<double>(net::escaped_exceptions().load(
                                 std::memory_order_relaxed));
                           });
  metrics.gauge_of("nines_build_info", "The running build.", {{"version", NINES_VERSION}}).set(1);
}

void register_cache_metrics(obs::registry& metrics, const core::answer_cache& cache) {
  using stats = core::answer_cache::stats;
  const auto stat = [&cache](auto field) {
    return [&cache, field] { return static_cast<double>(cache.read_stats().*field); };
  };
  metrics.gauge_function("nines_cache_entries", "Answers the cache holds.", {},
                         stat(&stats::entries));
  metrics.gauge_function("nines_cache_bytes", "Bytes the cache holds (bounded by cache.max_bytes).",
                         {}, stat(&stats::bytes));
  metrics.counter_function("nines_cache_stored_total", "Answers stored in the cache.", {},
                           stat(&stats::stored));
  metrics.counter_function("nines_cache_dropped_total",
                           "Answers the cache dropped: evicted (for room, least recently used "
                           "first), expired (after cache.ttl_ms), too_large (not kept: above "
                           "cache.max_entry_bytes), cleared (by a reload).",
                           {{"reason", "evicted"}}, stat(&stats::evicted));
  metrics.counter_function("nines_cache_dropped_total", "", {{"reason", "expired"}},
                           stat(&stats::expired));
  metrics.counter_function("nines_cache_dropped_total", "", {{"reason", "too_large"}},
                           stat(&stats::too_large));
  metrics.counter_function("nines_cache_dropped_total", "", {{"reason", "cleared"}},
                           stat(&stats::cleared));
}

void register_upload_metrics(obs::registry& metrics, const upload_store& store) {
  metrics.gauge_function("nines_uploads", "tus uploads held (unfinished, or finished and not yet "
                         "used).", {}, [&store] {
                           return static_cast<double>(store.read_stats().uploads);
                         });
  metrics.gauge_function("nines_upload_stored_bytes", "Bytes the uploads held have stored.", {},
                         [&store] {
                           return static_cast<double>(store.read_stats().stored_bytes);
                         });
  metrics.counter_function("nines_upload_bytes_received_total",
                           "Bytes of upload appends, kept or refused (fenced by a newer append, "
                           "past the length, a checksum mismatch).",
                           {{"result", "kept"}},
                           [&store] { return static_cast<double>(store.bytes_kept()); });
  metrics.counter_function("nines_upload_bytes_received_total", "", {{"result", "refused"}},
                           [&store] { return static_cast<double>(store.bytes_refused()); });
  metrics.counter_function("nines_upload_resumed_appends_total",
                           "Appends that resumed an upload at a stored offset above 0.", {},
                           [&store] { return static_cast<double>(store.resumed_appends()); });
}

// The cap on client connections: as configured, or derived from the descriptor limit (raised to
// its hard maximum first), leaving room for upstream connections — every client request can need
// one (two with a hedge) beside the pools' idle ones — and a reserve for files and probes.
unsigned client_connection_limit(const core::config& cfg, unsigned workers) {
  if (cfg.limits.max_client_connections > 0) {
    return cfg.limits.max_client_connections;
  }
  struct rlimit nofile {};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, 1u << 20);
    ::setrlimit(RLIMIT_NOFILE, &nofile);
    ::getrlimit(RLIMIT_NOFILE, &nofile);
  }
  const std::uint64_t descriptors =
      nofile.rlim_cur == RLIM_INFINITY ? (1u << 20) : static_cast<std::uint64_t>(nofile.rlim_cur);
  const std::uint64_t pooled = static_cast<std::uint64_t>(cfg.upstreams.size()) * workers *
                               cfg.limits.max_idle_per_upstream;
  const std::uint64_t reserve = 128 + pooled;
  const std::uint64_t limit = descriptors > reserve ? (descriptors - reserve) / 2 : 0;
  return static_cast<unsigned>(std::clamp<std::uint64_t>(limit, 16, 10'000'000));
}

void register_connection_metrics(obs::registry& metrics, const net::server_group& group) {
  metrics.gauge_function("nines_client_connections", "Client connections open now.", {},
                         [&group] { return static_cast<double>(group.read_counts().open); });
  metrics.counter_function("nines_client_connections_refused_total",
                           "Client connections answered 503 and closed because a connection "
                           "limit was reached.",
                           {{"reason", "limit"}},
                           [&group] { return static_cast<double>(group.read_counts().refused); });
  metrics.counter_function("nines_accept_errors_total",
                           "Failed accepts on the listener (EMFILE, ...); logged at most once a "
                           "second.",
                           {}, [&group] {
                             return static_cast<double>(group.read_counts().accept_errors);
                           });
}

void register_tls_metrics(obs::registry& metrics, const net::server_group& group,
                          const std::shared_ptr<tls_server_store>& tls) {
  metrics.counter_function("nines_tls_handshakes_total",
                           "TLS handshakes with clients, by result (ok, or why they failed).",
                           {{"result", "ok"}}, [&group] {
                             return static_cast<double>(group.read_counts().tls_handshakes);
                           });
  for (std::size_t i = 0; i < tls_failure_reasons.size(); ++i) {
    metrics.counter_function(
        "nines_tls_handshakes_total", "",
        {{"result", std::string(tls_failure_reasons[i])}},
        [&group, i] { return static_cast<double>(group.read_counts().tls_failures[i]); });
  }
  metrics.gauge_function("nines_tls_certificate_expiry_seconds",
                         "Seconds until the soonest of the API listener's certificates expires "
                         "(negative once one has).",
                         {}, [tls] {
                           const auto id = tls->current();
                           std::int64_t soonest = std::numeric_limits<std::int64_t>::max();
                           for (const auto& c : id->certificates()) {
                             soonest = std::min(soonest, c.not_after);
                           }
                           return static_cast<double>(soonest - std::time(nullptr));
                         });
}

// The listener's TLS identity from `settings`, or every problem as one message (startup).
std::shared_ptr<const tls_server_identity> load_tls_identity(
    const core::tls_listener_settings& settings) {
  auto loaded = tls_server_identity::load(settings);
  if (!loaded.value) {
    std::string what = "the TLS certificates cannot be loaded:";
    for (const auto& p : loaded.problems) {
      what += " " + p.key + ": " + p.message + ";";
    }
    what.pop_back();
    throw std::runtime_error(what);
  }
  return loaded.value;
}

// The files a TLS identity is built from, to notice when one changes.
std::vector<std::string> tls_files(const core::tls_listener_settings& s) {
  std::vector<std::string> files;
  if (!s.enabled()) {
    return files;
  }
  files = {s.cert_file, s.key_file};
  if (!s.client_ca_file.empty()) {
    files.push_back(s.client_ca_file);
  }
  for (const auto& e : s.sni) {
    files.push_back(e.cert_file);
    files.push_back(e.key_file);
  }
  return files;
}

bool same_tls_settings(const core::tls_listener_settings& a, const core::tls_listener_settings& b) {
  if (a.sni.size() != b.sni.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.sni.size(); ++i) {
    if (a.sni[i].server_name != b.sni[i].server_name || a.sni[i].cert_file != b.sni[i].cert_file ||
        a.sni[i].key_file != b.sni[i].key_file) {
      return false;
    }
  }
  return a.cert_file == b.cert_file && a.key_file == b.key_file &&
         a.client_ca_file == b.client_ca_file && a.min_version == b.min_version;
}

// A generation for `cfg`: targets (with TLS contexts; throws on a bad ca_file), identities, and the
// live entries of `previous` for the upstreams that did not change.
std::shared_ptr<generation> build_generation(const core::config& cfg, std::uint64_t version,
                                             const generation* previous,
                                             credential_keeper& credentials) {
  auto gen = std::make_shared<generation>(cfg.upstreams.size());
  gen->version = version;
  gen->config = std::make_shared<const core::config>(cfg);
  gen->routes = core::route_table(cfg.routes.passthrough);
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    const auto& u = cfg.upstreams[i];
    upstream_target target{u.host, u.port, u.tls, nullptr, u.bind_address, u.bind_interface};
    if (u.tls) {
      target.tls_context = make_client_tls_context(u.tls_verify, u.ca_file);
    }
    gen->targets.push_back(std::move(target));
    gen->credentials.push_back(credentials.for_upstream(u));
    gen->identities.push_back(upstream_identity(u));
    if (previous != nullptr) {
      for (std::size_t k = 0; k < previous->identities.size(); ++k) {
        if (previous->identities[k] == gen->identities[i]) {
          gen->live.adopt(i, previous->live.shared(k));
        }
      }
    }
  }
  return gen;
}


// Reloads the configuration on SIGHUP and when its file or the keys file changes (checked every
// second). A valid new configuration becomes a new generation; an invalid one is rejected with
// every problem logged, and the old one stays. The TLS certificates reload on SIGHUP and when one
// of their files changes (checked every 250 ms): a new identity for new connections; a bad one is
// refused with its problems logged, and the old one stays.
class config_reloader {
 public:
  config_reloader(asio::io_context& control, std::shared_ptr<shared_state> shared,
                  upstream_monitor& monitor, std::string path,
                  std::shared_ptr<tls_server_store> tls)
      : control_(control), shared_(std::move(shared)), monitor_(monitor), path_(std::move(path)),
        tls_(std::move(tls)), timer_(control), hup_(control, SIGHUP) {}

  void start() {
    stamp_ = stamp_of(path_);
    keys_stamp_ = stamp_of(shared_->current.load()->config->auth.keys_file);
    tls_stamps_ = stamps_of(tls_files(shared_->current.load()->config->tls));
    watch_hup();
    spawn(control_.get_executor(), watch_file(), "config file watch");
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
    hup_.cancel();
  }

 private:
  void watch_hup() {
    hup_.async_wait([this](const error_code& ec, int) {
      if (ec || stopped_) {
        return;
      }
      reload("SIGHUP");
      reload_tls("SIGHUP");
      watch_hup();
    });
  }

  awaitable<void> watch_file() {
    for (unsigned tick = 1; !stopped_; ++tick) {
      timer_.expires_after(std::chrono::milliseconds(250));
      co_await timer_.async_wait(use_nothrow);
      if (stopped_) {
        continue;
      }
      shared_->credentials->check_files();
      shared_->credentials->forget_unused();
      if (tls_ && stamps_of(tls_files(shared_->current.load()->config->tls)) != tls_stamps_) {
        reload_tls("a certificate file changed");
      }
      if (tick % 4 != 0 || path_.empty()) {
        continue;
      }
      const auto now = stamp_of(path_);
      // The keys file reloads like the config (rotating a key is editing it).
      const auto keys_now = stamp_of(shared_->current.load()->config->auth.keys_file);
      if (now && (!stamp_ || !(*now == *stamp_))) {
        stamp_ = now;
        reload("the file changed");
      } else if (keys_now && (!keys_stamp_ || !(*keys_now == *keys_stamp_))) {
        reload("the keys file changed");
      }
    }
  }

  void reload(std::string_view why) {
    stamp_ = stamp_of(path_);  // whatever triggered it, this version of the file is now seen
    keys_stamp_ = stamp_of(shared_->current.load()->config->auth.keys_file);
    if (path_.empty()) {
      spdlog::warn("reload ({}) ignored: nines {} was started without --config", why,
                   core::names_of(shared_->current.load()->config->role).role);
      return;
    }
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    auto result = core::parse_config(text.str(), path_, shared_->current.load()->config->role);
    if (!in || !result.value) {
      spdlog::error("reload ({}): {} is invalid; the running configuration stays ({} problem{})",
                    why, path_, result.problems.size(), result.problems.size() == 1 ? "" : "s");
      for (const auto& p : result.problems) {
        spdlog::error("  {}", core::format_problem(path_, p));
      }
      return;
    }
    auto next = *result.value;
    std::shared_ptr<const core::key_registry> keys;
    if (core::effective_auth_mode(next.auth) == core::auth_mode::keys) {
      auto read = read_keys_file(next.auth.keys_file);
      if (!read.value) {
        spdlog::error("reload ({}): the keys file {} is invalid; the running configuration and "
                      "keys stay ({} problem{})",
                      why, next.auth.keys_file, read.problems.size(),
                      read.problems.size() == 1 ? "" : "s");
        for (const auto& p : read.problems) {
          spdlog::error("  {}", core::format_problem(next.auth.keys_file, p));
        }
        return;
      }
      const auto previous = shared_->keys.load();
      keys = core::build_key_registry(std::move(*read.value), previous.get());
    }
    const auto current = shared_->current.load();
    const auto& old = *current->config;
    // Whether TLS is on, and where, is fixed at the start; its certificates and policy reload.
    if (next.tls.enabled() != old.tls.enabled() ||
        (next.tls.listen.has_value() != old.tls.listen.has_value()) ||
        (next.tls.listen && (next.tls.listen->host != old.tls.listen->host ||
                             next.tls.listen->port != old.tls.listen->port))) {
      spdlog::warn("reload ({}): turning TLS on or off and tls.listen take effect at the next "
                   "start; the running TLS settings stay", why);
      next.tls = old.tls;
    }
    const bool tls_changed = !same_tls_settings(next.tls, old.tls);
    // What a running process cannot change: the listeners, the workers, the access log.
    if (next.gateway.listen.host != old.gateway.listen.host ||
        next.gateway.listen.port != old.gateway.listen.port ||
        next.gateway.workers != old.gateway.workers ||
        next.gateway.access_log != old.gateway.access_log) {
      spdlog::warn("reload ({}): gateway.listen, gateway.workers and gateway.access_log take "
                   "effect at the next start; the rest is applied now", why);
      next.gateway = old.gateway;
    }
    if (next.cache.max_bytes != old.cache.max_bytes ||
        next.cache.max_entry_bytes != old.cache.max_entry_bytes || next.cache.ttl != old.cache.ttl ||
        next.uploads.dir != old.uploads.dir || next.uploads.max_bytes != old.uploads.max_bytes ||
        next.uploads.max_upload_bytes != old.uploads.max_upload_bytes ||
        next.uploads.max_uploads != old.uploads.max_uploads || next.uploads.ttl != old.uploads.ttl) {
      spdlog::warn("reload ({}): [cache] and [uploads] take effect at the next start; the rest is "
                   "applied now", why);
      next.cache = old.cache;
      next.uploads = old.uploads;
    }
    std::shared_ptr<generation> gen;
    try {
      gen = build_generation(next, current->version + 1, current.get(), *shared_->credentials);
    } catch (const std::exception& e) {
      spdlog::error("reload ({}): {}; the running configuration stays", why, e.what());
      return;
    }
    shared_->current.store(gen);
    shared_->keys.store(keys);
    if (shared_->cache) {
      // Other upstreams, credentials or keys may answer otherwise (a key's id may now be another
      // client's): nothing kept under the old configuration is sent again.
      shared_->cache->clear();
    }
    monitor_.adopt(gen);
    spdlog::info("configuration reloaded ({}): version {}, {} {}", why, gen->version,
                 next.upstreams.size(), core::names_of(next.role).links);
    if (tls_changed) {
      reload_tls("the [tls] settings changed");
    }
  }

  // A new TLS identity from the running configuration's [tls], or the old one stays.
  void reload_tls(std::string_view why) {
    if (!tls_) {
      return;
    }
    const auto gen = shared_->current.load();
    const auto& settings = gen->config->tls;
    tls_stamps_ = stamps_of(tls_files(settings));
    auto loaded = tls_server_identity::load(settings);
    if (!loaded.value) {
      tls_reload_failures_->add(shared_->workers);
      spdlog::error("TLS reload ({}): refused, the running certificates stay ({} problem{})", why,
                    loaded.problems.size(), loaded.problems.size() == 1 ? "" : "s");
      for (const auto& p : loaded.problems) {
        spdlog::error("  {}: {}", p.key, p.message);
      }
      return;
    }
    tls_->replace(loaded.value);
    tls_reloads_->add(shared_->workers);
    for (const auto& c : loaded.value->certificates()) {
      spdlog::info("TLS reload ({}): serving {}{} from {}, valid until {}", why, c.subject,
                   c.server_name.empty() ? "" : " for " + c.server_name, c.cert_file,
                   fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", fmt::gmtime(static_cast<std::time_t>(c.not_after))));
    }
  }

  asio::io_context& control_;
  std::shared_ptr<shared_state> shared_;
  upstream_monitor& monitor_;
  std::string path_;
  std::shared_ptr<tls_server_store> tls_;
  asio::steady_timer timer_;
  asio::signal_set hup_;
  std::optional<file_stamp> stamp_;
  std::optional<file_stamp> keys_stamp_;
  std::vector<std::optional<file_stamp>> tls_stamps_;
  obs::counter* tls_reloads_ = &shared_->metrics->counter_of(
      "nines_tls_reloads_total", "TLS certificate reloads, by result.", {{"result", "ok"}});
  obs::counter* tls_reload_failures_ = &shared_->metrics->counter_of(
      "nines_tls_reloads_total", "", {{"result", "refused"}});
  bool stopped_ = false;
};

// The admin listener's requests: an edge's device keeper answers /devices and /devices/...; the
// rest is the gateway's (gateway/admin.hpp).
awaitable<void> answer_admin(request& req, downstream& client, const shared_state& shared,
                             std::optional<core::secret_digest> admin_key,
                             const devices::device_keeper* keeper,
                             devices::admin_options devices_admin) {
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  if (keeper != nullptr && (path == "/devices" || path.starts_with("/devices/"))) {
    co_await devices::handle_devices_admin(req, client, *keeper, devices_admin);
    co_return;
  }
  co_await handle_admin_request(req, client, shared, admin_key);
}

}  // namespace

int run_gateway(const core::config& cfg, const std::string& config_path) {
  if (cfg.gateway.log_format == "json") {
    spdlog::default_logger()->set_formatter(obs::json_log_formatter());
  }
  const unsigned workers =
      cfg.gateway.workers > 0 ? cfg.gateway.workers : net::usable_cpus();
  // The control thread's context (it runs below): token sources and key files live there. It is
  // declared first so that it outlives everything holding its timers (shared_state's credentials).
  asio::io_context control;
  auto shared = std::make_shared<shared_state>();
  shared->workers = workers;
  shared->sla = std::make_unique<sla_shard[]>(workers);
  // One metrics shard per worker, and one for the control thread (health monitor).
  shared->metrics = std::make_unique<obs::registry>(workers + 1);
  shared->journal = std::make_unique<core::stream_journal>(
      core::journal_settings{cfg.journal.max_bytes, cfg.journal.ttl});
  shared->access_log = obs::access_log_sink::open(cfg.gateway.access_log);
  shared->credentials = std::make_unique<credential_keeper>(control, *shared->metrics, workers);
  shared->current.store(build_generation(cfg, 1, nullptr, *shared->credentials));
  register_gauges(*shared->metrics, *shared->journal);
  if (cfg.journal.store) {
    // The shared journal in Redis (read at start, as the journal is).
    std::string password;
    if (!cfg.journal.store_password_file.empty()) {
      std::string why;
      password = read_key_file(cfg.journal.store_password_file, why);
      if (password.empty()) {
        throw std::runtime_error("journal.store_password_file " + cfg.journal.store_password_file +
                                 " " + why);
      }
    }
    shared->shared_journal =
        std::make_unique<journal_store>(cfg.journal, std::move(password), *shared->metrics);
    shared->shared_journal->start();
    spdlog::info("nines journal shared through {}",
                 core::describe_redis_store_address(*cfg.journal.store));
    if (cfg.auth.shared_limits != core::shared_limits_mode::off) {
      shared->limits = std::make_unique<shared_limits>(cfg.auth.shared_limits,
                                                       *shared->shared_journal, *shared->metrics);
    }
  }
  if (cfg.uploads.enabled()) {
    core::upload_limits upload_limits;
    upload_limits.max_upload_bytes = cfg.uploads.max_upload_bytes;
    upload_limits.max_total_bytes = cfg.uploads.max_bytes;
    upload_limits.max_uploads = cfg.uploads.max_uploads;
    upload_limits.ttl = cfg.uploads.ttl;
    // A key's share: a quarter of the uploads, and room for at least one of the largest.
    upload_limits.max_key_bytes = std::max(upload_limits.max_key_bytes, cfg.uploads.max_upload_bytes);
    upload_limits.max_key_uploads = std::clamp<std::size_t>(cfg.uploads.max_uploads / 4, 1,
                                                            upload_limits.max_key_uploads);
    shared->uploads = std::make_unique<upload_store>(cfg.uploads.dir, upload_limits);
    register_upload_metrics(*shared->metrics, *shared->uploads);
  }
  if (cfg.cache.enabled()) {
    shared->cache = std::make_unique<core::answer_cache>(
        core::answer_cache_settings{cfg.cache.max_bytes, cfg.cache.max_entry_bytes, cfg.cache.ttl});
    register_cache_metrics(*shared->metrics, *shared->cache);
  }
  if (core::effective_auth_mode(cfg.auth) == core::auth_mode::keys) {
    auto keys = read_keys_file(cfg.auth.keys_file);
    if (!keys.value) {
      throw std::runtime_error("the keys file " + cfg.auth.keys_file + " is invalid (" +
                               std::to_string(keys.problems.size()) + " problems; --check lists "
                               "them)");
    }
    shared->keys.store(core::build_key_registry(std::move(*keys.value), nullptr));
  }

  server_limits limits;
  limits.max_body_bytes = cfg.limits.max_body_bytes;
  limits.max_header_bytes = cfg.limits.max_header_bytes;
  limits.max_header_count = cfg.limits.max_header_count;
  limits.max_chunk_meta_bytes = cfg.limits.max_chunk_meta_bytes;
  limits.header_timeout = cfg.timeouts.client_header;
  limits.idle_timeout = cfg.timeouts.client_idle;
  limits.write_timeout = cfg.timeouts.client_idle;
  limits.watch_departure = true;
  limits.max_connections = client_connection_limit(cfg, workers);
  limits.max_connections_per_worker = cfg.limits.max_client_connections_per_worker;
  limits.handshake_timeout = cfg.timeouts.tls_handshake;
  if (shared->uploads) {
    limits.streams_body = streams_upload_body;  // an append's bytes are kept as they arrive
  }
  if (shared->cache) {
    // The cache compares a body with the requests it kept while the body arrives.
    limits.watch_body = [state = shared.get()](const request& head,
                                               std::optional<std::uint64_t> declared) {
      return watch_cacheable_body(*state, head, declared);
    };
  }
  // The API listeners: plain, TLS, or both side by side (core::api_listeners_of).
  std::shared_ptr<tls_server_store> tls;
  if (cfg.tls.enabled()) {
    tls = std::make_shared<tls_server_store>(load_tls_identity(cfg.tls));
  }
  const auto api = core::api_listeners_of(cfg);
  std::vector<listener_spec> specs;
  if (api.plain) {
    specs.push_back({api.plain->host, api.plain->port, nullptr});
  }
  if (api.tls) {
    specs.push_back({api.tls->host, api.tls->port, tls});
  }
  server_group group(specs, workers, limits);
  const auto ports = group.bind_all();
  register_connection_metrics(*shared->metrics, group);
  if (tls) {
    register_tls_metrics(*shared->metrics, group, tls);
  }

  // The admin listener, on a thread of its own: metrics, status and the dashboard never share
  // the API port (gateway/admin.hpp).
  server_limits admin_limits;
  admin_limits.max_connections = 256;
  server_group admin(cfg.admin.listen.host, cfg.admin.listen.port, 1, admin_limits);
  const auto admin_port = admin.bind();
  const auto admin_key = cfg.admin.key_hash.empty()
                             ? std::nullopt
                             : core::parse_secret_digest(cfg.admin.key_hash);
  // An edge's device keeper ([devices]): its own thread, its /devices and metrics here.
  std::unique_ptr<devices::device_sidecar> sidecar;
  devices::admin_options devices_admin;
  devices_admin.admin_key = admin_key;
  if (cfg.devices) {
    std::string problem;
    const auto adb = devices::resolve_adb_server(cfg.devices->adb_server, problem);
    if (!adb) {
      throw std::runtime_error(problem);  // checked with the configuration: not reached
    }
    sidecar = std::make_unique<devices::device_sidecar>(
        *cfg.devices, *adb, static_cast<std::uint64_t>(steady::now().time_since_epoch().count()),
        cfg.alerting, *shared->metrics, shared->workers,
        fmt::format("http://{}:{}", cfg.admin.listen.host, admin_port));
    devices_admin.per_device_metrics = cfg.devices->per_device_metrics;
    shared->keeps_devices = true;
    shared->extra_metrics = [keeper = &sidecar->keeper(), per_device = devices_admin.per_device_metrics] {
      return devices::devices_metrics(*keeper->snapshot(), per_device);
    };
  }
  const devices::device_keeper* keeper = sidecar ? &sidecar->keeper() : nullptr;
  admin.start(0, [shared, admin_key, keeper, devices_admin](request& req, downstream& client) {
    return answer_admin(req, client, *shared, admin_key, keeper, devices_admin);
  });
  std::thread admin_thread([&admin] { admin.run(); });
  if (sidecar) {
    sidecar->start();
    if (const auto port = sidecar->proxy_port()) {
      spdlog::info("nines devices adb proxy listening on {}:{} (holding commands up to {} ms)",
                   cfg.devices->adb_proxy.substr(0, cfg.devices->adb_proxy.rfind(':')), *port,
                   cfg.devices->hold.count());
    }
    spdlog::info("nines devices keeping the adb server at {}:{} ({} configured addresses)",
                 sidecar->adb().host, sidecar->adb().port, cfg.devices->network.size());
  }

  // The control thread: signals, the health monitor, reloads. It starts first, so that the first
  // routing snapshot exists before any request.
  // Alerts link to the dashboard, on the admin listener.
  upstream_monitor monitor(control, shared,
                           fmt::format("http://{}:{}", cfg.admin.listen.host, admin_port));
  monitor.start();
  config_reloader reloader(control, shared, monitor, config_path, tls);
  reloader.start();
  shared->credentials->start();

  std::atomic<bool> draining{false};
  std::vector<std::unique_ptr<worker_state>> states;
  const auto seed = static_cast<std::uint64_t>(steady::now().time_since_epoch().count());
  for (unsigned i = 0; i < group.size(); ++i) {
    states.push_back(std::make_unique<worker_state>(i, group.context(i).get_executor(), shared,
                                                    seed + i));
    worker_state* state = states.back().get();
    state->refresh();
    if (shared->limits) {
      state->limits =
          std::make_unique<limit_caller>(group.context(i).get_executor(), *shared->shared_journal);
      if (i == 0) {
        spawn(group.context(i).get_executor(), shared->limits->keep(*state->limits, draining),
              "shared limits keeper");
      }
    }
    group.start(i, [state](request& req, downstream& client) {
      return handle_request(req, client, *state);
    });
    spawn(group.context(i).get_executor(), housekeeping(*state, draining), "housekeeping");
  }

  // SIGUSR1: reopen the access log (after logrotate moved it).
  asio::signal_set reopen_signal(control, SIGUSR1);
  std::function<void()> watch_reopen = [&] {
    reopen_signal.async_wait([&](const error_code& ec, int) {
      if (ec) {
        return;
      }
      if (auto why = shared->access_log->reopen(); !why.empty()) {
        spdlog::error("SIGUSR1: {}", why);
      } else {
        spdlog::info("SIGUSR1: access log reopened");
      }
      watch_reopen();
    });
  };
  watch_reopen();
  asio::signal_set signals(control, SIGTERM, SIGINT);
  asio::steady_timer drain_timer(control);
  signals.async_wait([&](const error_code& ec, int signo) {
    if (ec) {
      return;
    }
    spdlog::info("signal {}: draining (up to {} ms)", signo, cfg.gateway.drain_timeout.count());
    draining = true;
    group.begin_drain();
    drain_timer.expires_after(cfg.gateway.drain_timeout);
    drain_timer.async_wait([&](const error_code& tec) {
      if (tec) {
        return;
      }
      // Journaled streams still running end with a resumable break (their relays look every
      // half second); a second later whatever remains is closed.
      spdlog::warn("drain timeout reached: ending the remaining streams, closing in 1 s");
      shared->cutting = true;
      drain_timer.expires_after(std::chrono::seconds(1));
      drain_timer.async_wait([&](const error_code& cec) {
        if (!cec) {
          group.stop();
        }
      });
    });
  });
  std::thread control_thread([&] { control.run(); });

  spdlog::info("nines admin listening on http://{}:{}{}", cfg.admin.listen.host, admin_port,
               admin_key ? " (admin key required)" : "");
  std::string urls;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    urls += fmt::format("{}{}://{}:{}", i == 0 ? "" : " and ", specs[i].tls ? "https" : "http",
                        specs[i].host, ports[i]);
  }
  if (tls) {
    for (const auto& c : tls->current()->certificates()) {
      spdlog::info("TLS: serving {}{} from {}, valid until {}{}", c.subject,
                   c.server_name.empty() ? "" : " for " + c.server_name, c.cert_file,
                   fmt::format("{:%Y-%m-%dT%H:%M:%SZ}",
                               fmt::gmtime(static_cast<std::time_t>(c.not_after))),
                   tls->current()->requires_client_certificate() ? " (client certificates required)"
                                                                 : "");
    }
  }
  const auto names = core::names_of(cfg.role);
  spdlog::info("nines {} listening on {} with {} workers and {} {}{}", names.role, urls,
               group.size(), cfg.upstreams.size(), names.links,
               shared->keys.load() ? ", client keys required" : "");
  group.run();
  if (shared->shared_journal) {
    shared->shared_journal->stop();  // what the last generations queued, sent within a second
  }
  admin.stop();
  admin_thread.join();
  if (sidecar) {
    shared->extra_metrics = nullptr;  // it reads the keeper
    shared->keeps_devices = false;
    sidecar->stop();
    sidecar.reset();  // joins its thread
  }
  asio::post(control, [&] {
    signals.cancel();
    reopen_signal.cancel();
    drain_timer.cancel();
    reloader.stop();
    monitor.stop();
    shared->credentials->stop();
  });
  control_thread.join();
  // The coroutines a drain cut (and generations still running) go before the worker states they
  // refer to.
  group.close_workers();
  states.clear();  // flushes the access log buffers
  spdlog::info("nines {} stopped", names.role);
  return 0;
}

}  // namespace nines::gateway
