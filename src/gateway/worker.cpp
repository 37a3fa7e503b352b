#include "gateway/worker.hpp"

namespace nines::gateway {

worker_state::worker_state(unsigned worker_index, std::shared_ptr<shared_state> state,
                           std::uint64_t seed)
    : index(worker_index), shared(std::move(state)), random(seed),
      access_log(shared->access_log), probe(*shared->metrics, worker_index) {
  const auto& cfg = *shared->config;
  pools.reserve(shared->targets.size());
  for (const auto& target : shared->targets) {
    pools.emplace_back(target, cfg.limits.max_idle_per_upstream, cfg.timeouts.upstream_idle);
  }
}

}  // namespace nines::gateway
