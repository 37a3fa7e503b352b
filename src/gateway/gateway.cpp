#include "gateway/gateway.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <thread>

#include "gateway/router.hpp"
#include "net/server_group.hpp"
#include "net/spawn.hpp"

namespace nines::gateway {
namespace {

using namespace net;

// Every 100 ms until the worker drains: writes its buffered access log lines; every second, also
// drops the journal's expired entries.
awaitable<void> housekeeping(worker_state& worker, const std::atomic<bool>& draining) {
  for (unsigned tick = 0; !draining.load(std::memory_order_relaxed); ++tick) {
    co_await sleep_for(std::chrono::milliseconds(100));
    worker.access_log.flush();
    if (tick % 10 == worker.index % 10) {
      worker.shared->journal->sweep(std::chrono::steady_clock::now());
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
  metrics.gauge_of("nines_build_info", "The running build.", {{"version", NINES_VERSION}}).set(1);
}

}  // namespace

int run_gateway(const core::config& cfg) {
  const unsigned workers =
      cfg.gateway.workers > 0 ? cfg.gateway.workers : std::max(1U, std::thread::hardware_concurrency());
  auto shared = std::make_shared<shared_state>(cfg.upstreams.size());
  shared->config = std::make_shared<const core::config>(cfg);
  shared->metrics = std::make_unique<obs::registry>(workers);
  shared->journal = std::make_unique<core::stream_journal>(
      core::journal_settings{cfg.journal.max_bytes, cfg.journal.ttl});
  register_gauges(*shared->metrics, *shared->journal);
  shared->access_log = obs::access_log_sink::open(cfg.gateway.access_log);
  for (const auto& u : cfg.upstreams) {
    upstream_target target{u.host, u.port, u.tls, nullptr};
    if (u.tls) {
      target.tls_context = make_client_tls_context(u.tls_verify, u.ca_file);
    }
    shared->targets.push_back(std::move(target));
  }

  server_limits limits;
  limits.max_body_bytes = cfg.limits.max_body_bytes;
  limits.max_header_bytes = cfg.limits.max_header_bytes;
  limits.header_timeout = cfg.timeouts.client_header;
  limits.idle_timeout = cfg.timeouts.client_idle;
  limits.write_timeout = cfg.timeouts.client_idle;
  server_group group(cfg.gateway.listen.host, cfg.gateway.listen.port, workers, limits);
  const auto port = group.bind();

  std::atomic<bool> draining{false};
  std::vector<std::unique_ptr<worker_state>> states;
  const auto seed = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  for (unsigned i = 0; i < group.size(); ++i) {
    states.push_back(std::make_unique<worker_state>(i, shared, seed + i));
    worker_state* state = states.back().get();
    group.start(i, [state](request& req, downstream& client) {
      return handle_request(req, client, *state);
    });
    spawn(group.context(i).get_executor(), housekeeping(*state, draining), "housekeeping");
  }

  // Signals are handled on a control thread, so that the workers' contexts can run out of work
  // (and return) once drained.
  asio::io_context control;
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
      if (!tec) {
        spdlog::warn("drain timeout reached: closing the remaining connections");
        group.stop();
      }
    });
  });
  std::thread control_thread([&] { control.run(); });

  spdlog::info("nines gateway listening on http://{}:{} with {} workers and {} upstreams",
               cfg.gateway.listen.host, port, group.size(), cfg.upstreams.size());
  group.run();
  asio::post(control, [&] {
    signals.cancel();
    drain_timer.cancel();
  });
  control_thread.join();
  states.clear();  // flushes the access log buffers
  spdlog::info("nines gateway stopped");
  return 0;
}

}  // namespace nines::gateway
