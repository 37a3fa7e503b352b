#include "gateway/worker.hpp"

#include <fmt/format.h>

namespace nines::gateway {

std::string upstream_identity(const core::upstream_config& u) {
  // What its connections depend on; credentials are per request and need no new connection.
  return fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", u.name, u.url, u.tls_verify, u.ca_file,
                     u.max_connections, u.max_pending, u.bind_address, u.bind_interface);
}

worker_state::worker_state(unsigned worker_index, asio_executor worker_executor,
                           std::shared_ptr<shared_state> state, std::uint64_t seed)
    : index(worker_index), executor(std::move(worker_executor)), shared(std::move(state)),
      random(seed),
      access_log(shared->access_log), probe(*shared->metrics, worker_index) {}

void worker_state::refresh() {
  auto current = shared->current.load();
  if (current == gen && pools) {
    return;
  }
  const auto& cfg = *current->config;
  auto next = std::make_shared<pool_set>();
  next->version = current->version;
  for (std::size_t i = 0; i < cfg.upstreams.size(); ++i) {
    // An upstream that did not change keeps its pool (and warm connections), its retry tokens
    // and its observed times to first byte.
    std::optional<std::size_t> same;
    if (gen) {
      for (std::size_t k = 0; k < gen->identities.size(); ++k) {
        if (gen->identities[k] == current->identities[i]) {
          same = k;
        }
      }
    }
    if (same && pools && *same < pools->pools.size()) {
      next->pools.push_back(pools->pools[*same]);
      next->retry_tokens.push_back(pools->retry_tokens[*same]);
      next->ttfb.push_back(pools->ttfb[*same]);
      continue;
    }
    const auto& u = cfg.upstreams[i];
    net::pool_settings ps;
    ps.max_idle = cfg.limits.max_idle_per_upstream;
    ps.min_idle = cfg.limits.min_idle_per_upstream;
    ps.idle_timeout = cfg.timeouts.upstream_idle;
    ps.max_lifetime = cfg.limits.max_connection_lifetime;
    ps.max_connections = u.max_connections;
    ps.max_pending = u.max_pending;
    ps.connect_timeout = cfg.timeouts.connect;
    next->pools.push_back(std::make_shared<net::upstream_pool>(executor, current->targets[i], ps));
    next->retry_tokens.push_back(std::make_shared<core::retry_tokens>(cfg.retry.budget));
    next->ttfb.push_back(std::make_shared<core::ttfb_window>());
  }
  gen = std::move(current);
  pools = std::move(next);
}

}  // namespace nines::gateway
