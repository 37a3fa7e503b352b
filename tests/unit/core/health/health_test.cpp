// Link quality, health score, outlier detection with the circuit breaker, tier hysteresis, retry
// budget and hedging delay: every state machine on simulated time.

#include <gtest/gtest.h>

#include "core/health/health_score.hpp"
#include "core/routing/hedge_policy.hpp"
#include "core/health/link_quality.hpp"
#include "core/health/outlier_detector.hpp"
#include "core/routing/retry_budget.hpp"
#include "core/routing/tier_selector.hpp"

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;

const steady::time_point t0 = steady::time_point{} + std::chrono::hours(1);

TEST(link_quality, rtt_loss_and_jitter_over_the_window) {
  link_quality q(10, 0.5);
  for (int rtt : {10, 30, 10, 30}) {
    q.record_success(milliseconds(rtt));
  }
  q.record_failure();
  auto r = q.report({});
  EXPECT_EQ(r.probes, 5U);
  EXPECT_EQ(r.failed, 1U);
  EXPECT_DOUBLE_EQ(r.loss, 0.2);
  EXPECT_DOUBLE_EQ(r.jitter_ms, 20.0);  // |30-10| every time
  EXPECT_DOUBLE_EQ(r.rtt_p99_ms, 30.0);
  EXPECT_DOUBLE_EQ(r.rtt_min_ms, 10.0);
  // EWMA with alpha 0.5: 10, 20, 15, 22.5.
  EXPECT_DOUBLE_EQ(r.rtt_ewma_ms, 22.5);
  EXPECT_EQ(r.loss_level, quality_level::alert);  // 20% > 1%
  EXPECT_EQ(r.rtt_level, quality_level::normal);
  EXPECT_EQ(r.overall(), quality_level::alert);
  EXPECT_EQ(q.consecutive_failures(), 1U);
}

TEST(link_quality, levels_follow_the_reference_table) {
  const link_thresholds t;
  EXPECT_EQ(rate(99, 100, 300), quality_level::normal);
  EXPECT_EQ(rate(150, 100, 300), quality_level::warning);
  EXPECT_EQ(rate(301, 100, 300), quality_level::alert);
  link_quality q(100);
  for (int i = 0; i < 50; ++i) {
    q.record_success(milliseconds(i % 2 ? 200 : 20));  // jitter 180 ms, RTT EWMA ~100+
  }
  const auto r = q.report(t);
  EXPECT_EQ(r.jitter_level, quality_level::alert);
  EXPECT_EQ(r.loss_level, quality_level::normal);
}

TEST(link_quality, the_window_forgets_old_probes) {
  link_quality q(4);
  q.record_failure();
  q.record_failure();
  for (int i = 0; i < 4; ++i) {
    q.record_success(milliseconds(5));
  }
  EXPECT_EQ(q.report({}).failed, 0U);
  EXPECT_EQ(q.report({}).probes, 4U);
}

TEST(health_score, follows_the_reference_and_each_factor_pulls_it_down) {
  EXPECT_DOUBLE_EQ(health_score({}), 1.0);
  score_inputs in;
  in.rtt_ewma_ms = 250;
  EXPECT_DOUBLE_EQ(health_score(in), 0.5);  // 1 - min(250/500, 1)
  in.missed_probes = 1;
  EXPECT_DOUBLE_EQ(health_score(in), 0.3);  // - 0.2 per missed probe
  in.missed_probes = 5;
  EXPECT_DOUBLE_EQ(health_score(in), 0.0);
  score_inputs errors;
  errors.error_rate = 0.25;
  EXPECT_DOUBLE_EQ(health_score(errors), 0.75);
  score_inputs loss;
  loss.loss = 0.05;
  EXPECT_DOUBLE_EQ(health_score(loss), 0.0);  // 5% probe loss: unusable
  score_inputs jitter;
  jitter.jitter_ms = 160;
  EXPECT_DOUBLE_EQ(health_score(jitter), 0.5);
  score_inputs busy;
  busy.in_flight = 10;
  busy.max_requests = 10;
  EXPECT_DOUBLE_EQ(health_score(busy), 0.7);
  busy.max_requests = 0;  // unlimited: load is left to the balancer
  EXPECT_DOUBLE_EQ(health_score(busy), 1.0);
}

std::vector<traffic_report> quiet(std::size_t n) { return std::vector<traffic_report>(n); }

TEST(outlier_detector, consecutive_gateway_failures_eject_for_a_growing_time) {
  outlier_settings s;
  s.base_ejection = seconds(30);
  s.max_ejection = seconds(300);
  outlier_detector d(s, 3);
  auto traffic = quiet(3);
  traffic[1].gateway_failures = 4;
  traffic[1].consecutive_gateway_failures = 4;
  d.tick(traffic, t0);
  EXPECT_EQ(d.state(1), breaker_state::closed);
  traffic[1].consecutive_gateway_failures = 5;
  d.tick(traffic, t0 + milliseconds(100));
  EXPECT_EQ(d.state(1), breaker_state::open);
  EXPECT_EQ(d.open_until(1), t0 + milliseconds(100) + seconds(30));
  EXPECT_NE(d.last_reason(1).find("5 gateway failures in a row"), std::string::npos);
  // Open until its time is over, then half-open.
  d.tick(quiet(3), t0 + seconds(30));
  EXPECT_EQ(d.state(1), breaker_state::open);
  d.tick(quiet(3), t0 + seconds(31));
  EXPECT_EQ(d.state(1), breaker_state::half_open);
  // A failed trial opens it again, for twice as long.
  traffic = quiet(3);
  traffic[1].trial_failures = 1;
  d.tick(traffic, t0 + seconds(32));
  EXPECT_EQ(d.state(1), breaker_state::open);
  EXPECT_EQ(d.open_until(1), t0 + seconds(32) + seconds(60));
  EXPECT_EQ(d.ejections_total(1), 2U);
}

TEST(outlier_detector, half_open_closes_after_its_trials_succeed) {
  outlier_settings s;
  s.half_open_trials = 3;
  s.base_ejection = seconds(30);
  outlier_detector d(s, 2);
  auto traffic = quiet(2);
  traffic[0].consecutive_connect_failures = 5;
  d.tick(traffic, t0);
  ASSERT_EQ(d.state(0), breaker_state::open);
  EXPECT_NE(d.last_reason(0).find("connection failures"), std::string::npos);
  d.tick(quiet(2), t0 + seconds(30));
  ASSERT_EQ(d.state(0), breaker_state::half_open);
  traffic = quiet(2);
  traffic[0].trial_successes = 2;
  d.tick(traffic, t0 + seconds(31));
  EXPECT_EQ(d.state(0), breaker_state::half_open);
  traffic[0].trial_successes = 1;
  d.tick(traffic, t0 + seconds(32));
  EXPECT_EQ(d.state(0), breaker_state::closed);
  // Behaving for max_ejection makes the next ejection short again.
  d.tick(quiet(2), t0 + seconds(32) + seconds(300));
  traffic = quiet(2);
  traffic[0].consecutive_gateway_failures = 5;
  d.tick(traffic, t0 + seconds(400));
  EXPECT_EQ(d.open_until(0), t0 + seconds(400) + seconds(30));
}

TEST(outlier_detector, failure_rate_over_the_interval_ejects_with_enough_requests) {
  outlier_settings s;
  s.failure_rate_threshold = 0.5;
  s.failure_rate_min_requests = 20;
  s.interval = seconds(10);
  outlier_detector d(s, 4);
  auto traffic = quiet(4);
  traffic[2].successes = 5;
  traffic[2].gateway_failures = 9;  // 64%, but only 14 attempts
  d.tick(traffic, t0);
  EXPECT_EQ(d.state(2), breaker_state::closed);
  traffic[2].successes = 3;
  traffic[2].gateway_failures = 3;  // 20 attempts, 60%
  d.tick(traffic, t0 + seconds(1));
  EXPECT_EQ(d.state(2), breaker_state::open);
  // Old attempts leave the window: the same counts spread over more than the interval do not.
  outlier_detector slow(s, 4);
  traffic = quiet(4);
  traffic[3].gateway_failures = 8;
  slow.tick(traffic, t0);
  traffic[3].gateway_failures = 12;
  slow.tick(traffic, t0 + seconds(11));
  EXPECT_EQ(slow.state(3), breaker_state::closed);
}

TEST(outlier_detector, never_ejects_more_than_the_share_or_the_last_one) {
  outlier_settings s;
  s.max_ejection_percent = 0.5;
  outlier_detector d(s, 3);
  auto traffic = quiet(3);
  for (auto& t : traffic) {
    t.consecutive_gateway_failures = 10;
  }
  d.tick(traffic, t0);
  EXPECT_EQ(d.ejected(), 1U);  // 2 of 3 would be more than half
  outlier_settings all = s;
  all.max_ejection_percent = 1.0;
  outlier_detector e(all, 2);
  traffic = quiet(2);
  traffic[0].consecutive_gateway_failures = 10;
  traffic[1].consecutive_gateway_failures = 10;
  e.tick(traffic, t0);
  EXPECT_EQ(e.ejected(), 1U);  // never the last one
}

TEST(active_health, thresholds_both_ways) {
  const active_health_settings s{2, 3};
  EXPECT_TRUE(next_active_health(true, 0, 2, s));
  EXPECT_FALSE(next_active_health(true, 0, 3, s));
  EXPECT_FALSE(next_active_health(false, 1, 0, s));
  EXPECT_TRUE(next_active_health(false, 2, 0, s));
}

TEST(tier_selector, leaves_at_once_and_returns_only_after_the_hysteresis) {
  tier_selector t(2, tier_settings{0.3, seconds(30)}, t0);
  const double healthy[] = {0.9, 0.9};
  const double primary_down[] = {-1, 0.9};
  const double primary_weak[] = {0.2, 0.9};
  EXPECT_EQ(t.update(healthy, t0), 0U);
  EXPECT_EQ(t.update(primary_down, t0 + seconds(1)), 1U);
  EXPECT_EQ(t.update(healthy, t0 + seconds(2)), 1U);   // healthy for 0 s
  EXPECT_EQ(t.update(healthy, t0 + seconds(31)), 1U);  // 29 s
  EXPECT_EQ(t.update(healthy, t0 + seconds(32)), 0U);  // 30 s: back
  EXPECT_EQ(t.switches(), 2U);
  EXPECT_EQ(t.update(primary_weak, t0 + seconds(33)), 1U);  // best score below the threshold
}

TEST(tier_selector, a_flapping_primary_moves_traffic_once) {
  tier_selector t(2, tier_settings{0.3, seconds(30)}, t0);
  // The primary is down for 1 s and up for 1 s, for two minutes, ticked every 100 ms.
  for (int ms = 0; ms < 120000; ms += 100) {
    const bool up = (ms / 1000) % 2 == 0;
    const double scores[] = {up ? 0.9 : -1.0, 0.8};
    t.update(scores, t0 + milliseconds(ms));
  }
  EXPECT_EQ(t.switches(), 1U);
  EXPECT_EQ(t.current(), 1U);
}

TEST(tier_selector, a_failing_backup_sends_traffic_to_the_best_healthy_tier_even_if_recent) {
  tier_selector t(3, tier_settings{0.3, seconds(30)}, t0);
  const double a[] = {-1, 0.9, 0.9};
  EXPECT_EQ(t.update(a, t0), 1U);
  const double b[] = {0.9, -1, 0.9};
  // Tier 1 fails; tier 0 is healthy again but only since now; tier 2 has been all along.
  EXPECT_EQ(t.update(b, t0 + seconds(5)), 2U);
  const double none[] = {-1, -1, -1};
  EXPECT_EQ(t.update(none, t0 + seconds(6)), 2U);  // nothing healthy: stay
}

TEST(retry_budget, a_share_of_active_requests_with_a_floor) {
  retry_budget_settings s;
  s.budget_percent = 0.2;
  s.min_retry_concurrency = 3;
  EXPECT_TRUE(retry_allowed(s, 0, 0));
  EXPECT_TRUE(retry_allowed(s, 1, 2));
  EXPECT_FALSE(retry_allowed(s, 1, 3));
  EXPECT_TRUE(retry_allowed(s, 100, 19));
  EXPECT_FALSE(retry_allowed(s, 100, 20));
}

TEST(retry_budget, tokens_stop_retries_to_a_failing_upstream_until_it_recovers) {
  retry_tokens t;  // 10 tokens, +0.1 per success
  EXPECT_TRUE(t.allows_retry());
  for (int i = 0; i < 5; ++i) {
    t.on_failure();
  }
  EXPECT_FALSE(t.allows_retry());  // 5 of 10: not more than half
  for (int i = 0; i < 10; ++i) {
    t.on_success();
  }
  EXPECT_TRUE(t.allows_retry());  // 6
  for (int i = 0; i < 100; ++i) {
    t.on_success();
  }
  EXPECT_DOUBLE_EQ(t.tokens(), 10.0);
}

TEST(hedge_policy, delay_is_the_observed_p95_clamped_with_a_start_value) {
  hedge_settings s;
  ttfb_window w(100);
  EXPECT_EQ(hedge_delay(w, s), milliseconds(500));  // nothing observed yet
  for (int i = 1; i <= 100; ++i) {
    w.record(milliseconds(i * 10));  // 10 .. 1000 ms
  }
  EXPECT_EQ(hedge_delay(w, s), milliseconds(950));
  EXPECT_EQ(hedge_delay(w, s, milliseconds(300)), milliseconds(300));  // a request's own value
  ttfb_window fast(100);
  for (int i = 0; i < 50; ++i) {
    fast.record(std::chrono::microseconds(500));
  }
  EXPECT_EQ(hedge_delay(fast, s), milliseconds(20));  // the floor
  // The window keeps the latest values.
  for (int i = 0; i < 100; ++i) {
    w.record(milliseconds(5));
  }
  EXPECT_EQ(hedge_delay(w, s), milliseconds(20));
}

TEST(hedge_policy, lost_races_count_for_the_loss_memory_after_the_latest) {
  hedge_settings s;
  s.loss_memory = milliseconds(10000);
  EXPECT_EQ(race_losses_that_count(3, milliseconds(9999), s), 3U);
  EXPECT_EQ(race_losses_that_count(3, milliseconds(10000), s), 0U);  // tried again as if new
  s.loss_memory = milliseconds(0);  // off
  EXPECT_EQ(race_losses_that_count(3, milliseconds(0), s), 0U);
}

}  // namespace
}  // namespace nines::core
