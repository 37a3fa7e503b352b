#pragma once
// Limits on retries, so that a failing upstream cannot multiply the load on the others or on
// itself (a retry storm):
//   - the retry budget (Envoy's): retries trying may be at most `budget_percent` of the requests
//     in flight, but always at least `min_retry_concurrency`. A retry stops counting once its
//     answer starts reaching the client (it replaced the failed attempt; it is not adding load
//     any more), so that long streams that succeeded on a retry do not crowd out new retries,
//     while retries that pile up against slow or failing servers do hit the limit. Only retries
//     after an overload signal are charged (a retryable status such as 503, or no first byte in
//     time): retrying those is how a storm starts. After a refused connection, or one that dropped
//     (a crash, a restart), the work was lost, and replacing it adds no load;
//   - per upstream, gRPC's retry throttling: a token bucket of `max_tokens` that loses one token
//     per failed attempt and gains `token_ratio` per successful one; while it holds half its
//     tokens or fewer, no retry is sent to that upstream.
// Each worker keeps its own (thread per core): the bounds hold per worker, and so in proportion
// for the whole gateway. A retry that the budget refuses fails fast with a clear error.

#include <cstdint>

namespace nines::core {

struct retry_budget_settings {
  double budget_percent = 0.5;
  unsigned min_retry_concurrency = 10;
  double max_tokens = 10;
  double token_ratio = 0.1;
};

// May one more retry start, with `active_requests` requests and `active_retries` retries in flight?
bool retry_allowed(const retry_budget_settings& s, std::uint64_t active_requests,
                   std::uint64_t active_retries);

class retry_tokens {
 public:
  explicit retry_tokens(const retry_budget_settings& s = {})
      : tokens_(s.max_tokens), max_(s.max_tokens), ratio_(s.token_ratio) {}
  void on_success() { tokens_ = tokens_ + ratio_ > max_ ? max_ : tokens_ + ratio_; }
  void on_failure() { tokens_ = tokens_ - 1 < 0 ? 0 : tokens_ - 1; }
  // Retries may go to this upstream.
  bool allows_retry() const { return tokens_ > max_ / 2; }
  double tokens() const { return tokens_; }

 private:
  double tokens_;
  double max_;
  double ratio_;
};

}  // namespace nines::core
