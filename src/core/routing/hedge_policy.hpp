#pragma once
// Hedging: when an attempt has not produced its first byte after the hedge delay, a second attempt
// goes to another upstream; the first to answer wins and the other is cancelled. The delay is, by
// default, the p95 of the times to first byte this gateway observed recently (so that about 5% of
// requests are hedged), clamped to [min_delay, max_delay], or `initial_delay` until `min_samples`
// have been seen. The gateway takes the shortest p95 among the upstreams: the time by which another
// upstream would most likely have answered (an upstream's own p95 would never hedge one that is
// always slow). Hedges are retries: they are charged to the retry budget.
//
// Pure: the attempt loop records times and asks for the delay.

#include <chrono>
#include <cstddef>
#include <optional>
#include <vector>

namespace nines::core {

struct hedge_settings {
  double quantile = 0.95;
  std::chrono::milliseconds min_delay{20};
  std::chrono::milliseconds max_delay{10000};
  std::chrono::milliseconds initial_delay{500};
  std::size_t min_samples = 10;
  // How long a lost race counts against an upstream in selection (see race_losses_that_count).
  std::chrono::milliseconds loss_memory{10000};
};

// The most recent times to first byte of one upstream (a ring of `capacity`).
class ttfb_window {
 public:
  explicit ttfb_window(std::size_t capacity = 200) : capacity_(capacity) { samples_.reserve(capacity); }
  void record(std::chrono::nanoseconds ttfb);
  std::size_t size() const { return samples_.size(); }
  // The q-quantile of the window, or nullopt when empty.
  std::optional<std::chrono::nanoseconds> quantile(double q) const;

 private:
  std::size_t capacity_;
  std::vector<std::chrono::nanoseconds> samples_;
  std::size_t next_ = 0;
};

// An upstream whose first attempt was beaten by the hedge sent after it was slower than another
// upstream on the same request, despite its head start: selection counts such losses in a row like
// failures (core/upstream_selector), or else an upstream that is slow to first token would look
// idle, because its attempts are cancelled, and attract the load. A loss counts for
// `loss_memory` after the latest one; then the upstream is tried again as if new (it may have
// recovered), and its next delivery clears the count. (A hedge that loses proves nothing: it
// started later.)
unsigned race_losses_that_count(unsigned losses_in_row, std::chrono::nanoseconds since_latest,
                                const hedge_settings& settings);

// How long to wait for the first byte before hedging a request to this upstream. `fixed`, when
// set (a request's own x-nines-hedge-ms), wins.
std::chrono::milliseconds hedge_delay(const ttfb_window& observed, const hedge_settings& settings,
                                      std::optional<std::chrono::milliseconds> fixed = std::nullopt);

}  // namespace nines::core
