#pragma once
// What every worker knows and tells about each upstream as it happens: shared atomics (relaxed),
// written by the workers' attempts and read by the workers' selection and by the health monitor.
// A stale read costs at most one extra attempt.
//
//   - the connection cooldown: after connection failures in a row an upstream is avoided for a
//     doubling time (core/routing/upstream_cooldown.hpp), and after a Retry-After for as long as asked;
//   - outcomes since the monitor's last tick, and failures in a row, which feed the outlier
//     detector (core/health/outlier_detector.hpp);
//   - attempts in flight (for load balancing and max_requests) and half-open trials in flight;
//   - hedge races lost in a row (core/routing/hedge_policy.hpp), which selection counts like failures;
//   - pool sizes, published by each worker's housekeeping.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "core/health/outlier_detector.hpp"
#include "core/obs/sla_history.hpp"
#include "core/routing/upstream_cooldown.hpp"

namespace nines::gateway {

class upstream_live {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  struct entry {
    std::atomic<unsigned> connect_failures_in_row{0};
    std::atomic<unsigned> gateway_failures_in_row{0};
    std::atomic<unsigned> races_lost_in_row{0};      // first attempts beaten by a hedge
    std::atomic<std::int64_t> race_lost_at{0};       // the latest such loss (steady ticks)
    std::atomic<std::int64_t> cooldown_until{0};     // after connection failures (steady ticks)
    std::atomic<std::int64_t> retry_after_until{0};  // as the upstream asked (steady ticks)
    // An uplink that answered a tus creation 404/405/501 takes no uploads: bodies go inline to
    // it until then (steady ticks), when it is asked again.
    std::atomic<std::int64_t> no_uploads_until{0};
    std::atomic<std::uint64_t> successes{0};   // since the monitor's last tick
    std::atomic<std::uint64_t> gateway_failures{0};
    std::atomic<std::uint64_t> connect_failures{0};
    std::atomic<std::uint64_t> trial_successes{0};
    std::atomic<std::uint64_t> trial_failures{0};
    std::atomic<unsigned> trials_in_flight{0};
    std::atomic<unsigned> in_flight{0};
    std::atomic<unsigned> open_connections{0};  // all workers, as of their last housekeeping
    std::atomic<unsigned> idle_connections{0};
    std::atomic<unsigned> pending_requests{0};  // waiting for a connection at max_connections
    // Times to first byte of attempts since the monitor's last tick (core/sla_history buckets).
    std::array<std::atomic<std::uint64_t>, core::sla_history::ttft_bounds.size() + 1> ttft{};
  };

  explicit upstream_live(std::size_t upstreams) {
    for (std::size_t i = 0; i < upstreams; ++i) {
      entries_.push_back(std::make_shared<entry>());
    }
  }
  // A reload keeps the entries of the upstreams that did not change (by index in the new list).
  void adopt(std::size_t i, std::shared_ptr<entry> kept) { entries_[i] = std::move(kept); }
  const std::shared_ptr<entry>& shared(std::size_t i) const { return entries_[i]; }

  std::size_t size() const { return entries_.size(); }
  entry& operator[](std::size_t i) { return *entries_[i]; }
  const entry& operator[](std::size_t i) const { return *entries_[i]; }

  // Not cooling down after connection failures, nor waiting for a Retry-After.
  bool available(std::size_t i, time_point now) const {
    const auto t = now.time_since_epoch().count();
    return t >= entries_[i]->cooldown_until.load(std::memory_order_relaxed) &&
           t >= entries_[i]->retry_after_until.load(std::memory_order_relaxed);
  }

  void record_success(std::size_t i) {
    auto& e = *entries_[i];
    e.successes.fetch_add(1, std::memory_order_relaxed);
    if (e.connect_failures_in_row.load(std::memory_order_relaxed) != 0) {
      e.connect_failures_in_row.store(0, std::memory_order_relaxed);
    }
    if (e.gateway_failures_in_row.load(std::memory_order_relaxed) != 0) {
      e.gateway_failures_in_row.store(0, std::memory_order_relaxed);
    }
  }

  // 502/503/504, resets, timeouts, malformed answers, mid-stream breaks and stalls.
  void record_gateway_failure(std::size_t i) {
    auto& e = *entries_[i];
    e.gateway_failures.fetch_add(1, std::memory_order_relaxed);
    e.gateway_failures_in_row.fetch_add(1, std::memory_order_relaxed);
  }

  // Its first attempt was beaten by the hedge sent after it (core::race_losses_that_count).
  void record_race_lost(std::size_t i, time_point now) {
    auto& e = *entries_[i];
    e.races_lost_in_row.fetch_add(1, std::memory_order_relaxed);
    e.race_lost_at.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  }
  // It delivered to a client: no longer slow, whatever it lost before.
  void record_delivery(std::size_t i) {
    auto& e = *entries_[i];
    if (e.races_lost_in_row.load(std::memory_order_relaxed) != 0) {
      e.races_lost_in_row.store(0, std::memory_order_relaxed);
    }
  }
  // The losses in a row and the time since the latest.
  std::pair<unsigned, std::chrono::nanoseconds> races_lost(std::size_t i, time_point now) const {
    const auto& e = *entries_[i];
    const time_point at{time_point::duration(e.race_lost_at.load(std::memory_order_relaxed))};
    return {e.races_lost_in_row.load(std::memory_order_relaxed), now - at};
  }

  // Refused, connect timeout, TLS failure: the upstream is also avoided for a doubling cooldown.
  void record_connect_failure(std::size_t i, time_point now, const core::cooldown_policy& policy) {
    auto& e = *entries_[i];
    e.connect_failures.fetch_add(1, std::memory_order_relaxed);
    const unsigned n = e.connect_failures_in_row.fetch_add(1, std::memory_order_relaxed) + 1;
    extend(e.cooldown_until, now + core::cooldown_for(policy, n));
  }

  // The upstream asked to be left alone until then (Retry-After). Never shortens a wait.
  void retry_after(std::size_t i, time_point until) { extend(entries_[i]->retry_after_until, until); }

  // A health probe got through: connections work again, whatever the cooldown said.
  void record_probe_success(std::size_t i) {
    auto& e = *entries_[i];
    if (e.connect_failures_in_row.load(std::memory_order_relaxed) != 0) {
      e.connect_failures_in_row.store(0, std::memory_order_relaxed);
      e.cooldown_until.store(0, std::memory_order_relaxed);
    }
  }

  // Half-open: takes one of `max` trial slots; false when all are taken.
  bool try_begin_trial(std::size_t i, unsigned max) {
    auto& slot = entries_[i]->trials_in_flight;
    auto have = slot.load(std::memory_order_relaxed);
    while (have < max) {
      if (slot.compare_exchange_weak(have, have + 1, std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  // A trial that ended without saying anything about the upstream (its client left first).
  void release_trial(std::size_t i) {
    entries_[i]->trials_in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
  void end_trial(std::size_t i, bool ok) {
    auto& e = *entries_[i];
    (ok ? e.trial_successes : e.trial_failures).fetch_add(1, std::memory_order_relaxed);
    e.trials_in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

  // The monitor's side: the outcomes since its last call.
  core::traffic_report take_report(std::size_t i) {
    auto& e = *entries_[i];
    core::traffic_report r;
    r.successes = e.successes.exchange(0, std::memory_order_relaxed);
    r.gateway_failures = e.gateway_failures.exchange(0, std::memory_order_relaxed);
    r.connect_failures = e.connect_failures.exchange(0, std::memory_order_relaxed);
    r.consecutive_gateway_failures = e.gateway_failures_in_row.load(std::memory_order_relaxed);
    r.consecutive_connect_failures = e.connect_failures_in_row.load(std::memory_order_relaxed);
    r.trial_successes = e.trial_successes.exchange(0, std::memory_order_relaxed);
    r.trial_failures = e.trial_failures.exchange(0, std::memory_order_relaxed);
    return r;
  }
  void record_ttft(std::size_t i, double seconds) {
    entries_[i]->ttft[core::ttft_bucket(seconds)].fetch_add(1, std::memory_order_relaxed);
  }
  core::sla_history::ttft_counts take_ttft(std::size_t i) {
    core::sla_history::ttft_counts out{};
    for (std::size_t b = 0; b < out.size(); ++b) {
      out[b] = entries_[i]->ttft[b].exchange(0, std::memory_order_relaxed);
    }
    return out;
  }

  // After an ejection the counts in a row start over, so that the upstream is judged afresh.
  void forgive(std::size_t i) {
    entries_[i]->gateway_failures_in_row.store(0, std::memory_order_relaxed);
  }

 private:
  static void extend(std::atomic<std::int64_t>& slot, time_point until) {
    const auto want = until.time_since_epoch().count();
    auto have = slot.load(std::memory_order_relaxed);
    while (have < want && !slot.compare_exchange_weak(have, want, std::memory_order_relaxed)) {
    }
  }

  std::vector<std::shared_ptr<entry>> entries_;
};

}  // namespace nines::gateway
