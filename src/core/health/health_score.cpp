#include "core/health/health_score.hpp"

#include <algorithm>

namespace nines::core {

double health_score(const score_inputs& in, const score_weights& w) {
  const auto ratio = [](double value, double ceiling) {
    return ceiling > 0 ? std::clamp(value / ceiling, 0.0, 1.0) : 0.0;
  };
  const double latency = 1 - ratio(in.rtt_ewma_ms, static_cast<double>(w.rtt_ceiling.count()));
  const double loss = 1 - ratio(in.loss, w.loss_ceiling);
  const double jitter =
      1 - w.jitter_weight * ratio(in.jitter_ms, static_cast<double>(w.jitter_ceiling.count()));
  const double errors = 1 - std::clamp(in.error_rate, 0.0, 1.0);
  const double load =
      in.max_requests == 0 ? 1.0 : 1 - w.load_weight * ratio(in.in_flight, in.max_requests);
  const double score = latency * loss * jitter * errors * load - w.missed_penalty * in.missed_probes;
  return std::clamp(score, 0.0, 1.0);
}

}  // namespace nines::core
