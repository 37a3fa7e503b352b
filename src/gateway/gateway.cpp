#include "gateway/gateway.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>
#include <thread>

#include "gateway/router.hpp"
#include "net/server_group.hpp"

namespace nines::gateway {
namespace {

using namespace net;

// Writes each worker's buffered access log lines every 100 ms until the worker drains.
awaitable<void> flush_access_log(worker_state& worker, const std::atomic<bool>& draining) {
  while (!draining.load(std::memory_order_relaxed)) {
    co_await sleep_for(std::chrono::milliseconds(100));
    worker.access_log.flush();
  }
}

}  // namespace

int run_gateway(const core::config& cfg) {
  auto shared = std::make_shared<shared_state>(cfg.upstreams.size());
  shared->config = std::make_shared<const core::config>(cfg);
  shared->access_log = obs::access_log_sink::open(cfg.gateway.access_log);
  for (const auto& u : cfg.upstreams) {
    upstream_target target{u.host, u.port, u.tls, nullptr};
    if (u.tls) {
      target.tls_context = make_client_tls_context(u.tls_verify, u.ca_file);
    }
    shared->targets.push_back(std::move(target));
  }

  const unsigned workers =
      cfg.gateway.workers > 0 ? cfg.gateway.workers : std::max(1U, std::thread::hardware_concurrency());
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
    asio::co_spawn(group.context(i), flush_access_log(*state, draining), asio::detached);
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
