#pragma once
// An upstream's health score in [0, 1]: how good a choice it is now, from what the probes measure
// (RTT, loss, jitter, missed probes) and what real traffic saw (error rate, load). Selection
// weighs upstreams by it; a tier whose best score falls below a threshold is left. The formula and
// its reasoning are in docs/routing.md:
//
//   score = max(0, latency × loss × jitter × errors × load − missed_penalty × missed probes)
//   latency = 1 − min(rtt_ewma / rtt_ceiling, 1)        (the design reference's 1 − min(rtt/500ms, 1))
//   loss    = 1 − min(loss / loss_ceiling, 1)           (5% probe loss: 0)
//   jitter  = 1 − jitter_weight × min(jitter / jitter_ceiling, 1)
//   errors  = 1 − min(error_rate, 1)                    (passive: failed attempts / attempts)
//   load    = 1 − load_weight × min(in_flight / max_requests, 1)   (1 when unlimited)
//
// A product, so that any one bad factor pulls the score down whatever the others say; a
// subtraction for missed probes, so that an upstream that stops answering probes loses 0.2 per
// probe and is at 0 after five even when its last RTTs were excellent.

#include <chrono>

namespace nines::core {

struct score_weights {
  std::chrono::milliseconds rtt_ceiling{500};
  double loss_ceiling = 0.05;
  std::chrono::milliseconds jitter_ceiling{160};
  double jitter_weight = 0.5;
  double load_weight = 0.3;
  double missed_penalty = 0.2;
};

struct score_inputs {
  double rtt_ewma_ms = 0;  // 0 when no probe has succeeded yet (no penalty)
  double loss = 0;         // failed probes / probes in the window
  double jitter_ms = 0;
  double error_rate = 0;   // failed attempts / attempts in the recent window
  unsigned in_flight = 0;
  unsigned max_requests = 0;  // 0: unlimited
  unsigned missed_probes = 0;  // consecutive failed probes
};

double health_score(const score_inputs& in, const score_weights& w = {});

}  // namespace nines::core
