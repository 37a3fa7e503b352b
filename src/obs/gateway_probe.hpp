#pragma once
// What the gateway's request path records in metrics, through intention-revealing methods
// (docs/metrics.md lists every metric). One probe per worker: it caches the metric children it has
// used, so a hot path adds to a counter without a lookup by name or a lock.
//
// Threading: a probe belongs to its worker's thread.

#include <map>
#include <string>
#include <string_view>
#include <tuple>

#include "core/stream/stream_continuation.hpp"
#include "obs/metrics.hpp"

namespace nines::obs {

// The metrics label of a request path: a small fixed set, never the raw path (whose values are
// unbounded).
std::string_view route_label(std::string_view method_and_path_kind, std::string_view path);

class gateway_probe {
 public:
  gateway_probe(registry& metrics, unsigned worker);

  // `upstream`: the one that served it ("" when none did).
  void request_finished(std::string_view route, unsigned status, std::string_view outcome,
                        std::string_view upstream, double seconds);
  void first_token(std::string_view route, double seconds);
  // The histogram of gaps between two writes of a stream to the client, for a route.
  histogram& inter_token(std::string_view route);
  void stream_resumed(core::stream_break cause, const std::string& from, const std::string& to,
                      std::size_t carried_tokens, double gap_seconds);
  // An attempt on `upstream` ended: ok, broken (mid-stream), connect_refused, retryable_status...
  void attempt_finished(const std::string& upstream, std::string_view outcome);
  // Idle pooled connections to `upstream` closed because something arrived on them.
  void idle_connections_closed(const std::string& upstream, std::string_view reason,
                               std::uint64_t count);
  // A retry is about to be sent; `failover` when it goes to another upstream.
  void retry(bool failover);
  void retry_budget_exhausted();
  void hedge(std::string_view what);  // "sent", "won" (the hedge answered first), "lost"
  // "sent", "won" (the racing attempt carried the request), "lost"
  void connect_race(std::string_view what);
  // A body sent to an uplink as a tus upload (edge/upload_sender.hpp): "ready" (stored whole),
  // "resumed" (stored whole after continuing an earlier upload), "inline" (the uplink took none),
  // "failed" (the connection broke or timed out); and its body bytes, sent and sent again.
  void edge_upload(std::string_view result, std::uint64_t sent, std::uint64_t resent);
  void overflow(std::string_view limit);  // every upstream at its limit
  void journal_replay(std::string_view kind);  // "last_event_id", "idempotency" or "store"
  // A request on a route whose answers the cache keeps ([cache]): "hit" (answered from it),
  // "shared" (joined an identical request's generation in flight), "miss", "bypass".
  void cache_answer(std::string_view result);
  // "unknown_id", "idempotency_conflict", "lost"; from the shared journal: "store_unavailable",
  // "store_busy", "store_incomplete", "store_malformed"
  void journal_refused(std::string_view reason);
  // A request refused by client-key checks: missing, unknown, expired, model, rate, tokens,
  // concurrency.
  void auth_refused(std::string_view reason);

  registry& metrics() { return metrics_; }
  unsigned worker() const { return worker_; }

 private:
  counter& retries();
  counter& failovers();
  counter& budget_exhausted();
  counter& hedges(std::string_view what);
  counter& connect_races(std::string_view what);
  counter& overflows(std::string_view limit);
  counter& replays(std::string_view kind);
  counter& refusals(std::string_view reason);
  counter& cached_counter(std::string key, std::string_view name, std::string_view help,
                          const labels& l);
  histogram& cached_histogram(std::string key, std::string_view name, std::string_view help,
                              std::span<const double> bounds, const labels& l);
  // The per-request ones: the key is built in a reused buffer (key_of) and the labels only made
  // when the series is new, so that a request's metrics allocate nothing once warm.
  template <class MakeLabels>
  counter& cached_counter(std::string_view key, std::string_view name, std::string_view help,
                          MakeLabels make_labels) {
    if (auto it = counters_.find(key); it != counters_.end()) {
      return *it->second;
    }
    return *counters_.emplace(std::string(key), &metrics_.counter_of(name, help, make_labels()))
                .first->second;
  }
  template <class MakeLabels>
  histogram& cached_histogram(std::string_view key, std::string_view name, std::string_view help,
                              std::span<const double> bounds, MakeLabels make_labels) {
    if (auto it = histograms_.find(key); it != histograms_.end()) {
      return *it->second;
    }
    return *histograms_
                .emplace(std::string(key), &metrics_.histogram_of(name, help, bounds, make_labels()))
                .first->second;
  }
  // "part|part|...", in key_ (valid until the next call).
  std::string_view key_of(std::initializer_list<std::string_view> parts);

  registry& metrics_;
  unsigned worker_;
  std::map<std::string, counter*, std::less<>> counters_;
  std::map<std::string, histogram*, std::less<>> histograms_;
  std::string key_;
};

}  // namespace nines::obs
