// The SLA history and the built-in alert rules, on simulated time.

#include <gtest/gtest.h>

#include "core/obs/alert_rules.hpp"
#include "core/obs/sla_history.hpp"

namespace nines::core {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;

const steady::time_point t0 = steady::time_point{} + std::chrono::hours(100);

sla_history::ttft_counts ttft_of(double seconds_each, std::uint64_t n) {
  sla_history::ttft_counts c{};
  c[ttft_bucket(seconds_each)] = n;
  return c;
}

TEST(sla_history, windows_sum_what_happened_within_them) {
  sla_history h;
  h.add(t0, 90, 10, ttft_of(0.02, 90));
  h.add(t0 + minutes(10), 100, 0, ttft_of(0.02, 100));
  auto w = h.over(t0 + minutes(10), minutes(5));
  EXPECT_EQ(w.good, 100U);
  EXPECT_EQ(w.bad, 0U);
  EXPECT_DOUBLE_EQ(*w.availability, 1.0);
  w = h.over(t0 + minutes(10), minutes(60));
  EXPECT_EQ(w.good, 190U);
  EXPECT_EQ(w.bad, 10U);
  EXPECT_DOUBLE_EQ(*w.availability, 0.95);
  // 20 ms is in the (10 ms, 25 ms] bucket.
  EXPECT_GT(*w.ttft_p50_s, 0.01);
  EXPECT_LE(*w.ttft_p99_s, 0.025);
  EXPECT_FALSE(h.over(t0 + minutes(100), minutes(5)).availability);  // nothing then
}

TEST(sla_history, memory_is_bounded_and_old_buckets_are_forgotten) {
  sla_history h(seconds(10), 6);  // one minute
  h.add(t0, 5, 5, {});
  h.add(t0 + seconds(70), 1, 0, {});  // lands in the slot of t0 + 10 s... a minute later
  const auto w = h.over(t0 + seconds(70), seconds(600));  // asks for more than it keeps
  EXPECT_EQ(w.good, 1U);
  EXPECT_EQ(w.bad, 0U);
  const auto s = h.series(t0 + seconds(70), seconds(60));
  EXPECT_EQ(s.size(), 6U);
  EXPECT_FALSE(s.front().availability);
  EXPECT_TRUE(s.back().availability);
}

TEST(sla_history, quantiles_interpolate_inside_their_bucket) {
  sla_history::ttft_counts c{};
  c[ttft_bucket(0.2)] = 100;  // (100 ms, 250 ms]
  EXPECT_NEAR(*quantile_of(c, 0.5), 0.175, 1e-9);
  EXPECT_NEAR(*quantile_of(c, 0.99), 0.2485, 1e-9);
  EXPECT_FALSE(quantile_of(sla_history::ttft_counts{}, 0.5));
  sla_history::ttft_counts slow{};
  slow.back() = 3;  // past the last bound
  EXPECT_DOUBLE_EQ(*quantile_of(slow, 0.5), 60.0);
}

alert_settings settings() {
  alert_settings s;
  s.objective = 0.999;  // a budget of 0.1%
  return s;
}

TEST(alert_rules, burn_rates_fire_by_window_and_resolve) {
  sla_history h;
  alert_settings s = settings();
  s.error_spike_count = 1000000;  // burn rates only
  alert_evaluator e(s);
  // A healthy hour.
  for (int m = 0; m < 60; ++m) {
    h.add(t0 + minutes(m), 1000, 0, {});
  }
  EXPECT_TRUE(e.evaluate(h, {}, t0 + minutes(59)).empty());
  // 5% errors for 5 minutes: the budget (0.1%) burns at about 4x over the hour: a ticket (the
  // slow burn, over 1x), no page yet.
  for (int m = 60; m < 65; ++m) {
    h.add(t0 + minutes(m), 950, 50, {});
  }
  auto changes = e.evaluate(h, {}, t0 + minutes(64));
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].name, "NinesErrorBudgetBurnSlow");
  EXPECT_EQ(changes[0].labels.at("severity"), "ticket");
  // 20% errors: the hour passes 14.4x and the 6 hours 6x: both pages.
  for (int m = 65; m < 70; ++m) {
    h.add(t0 + minutes(m), 800, 200, {});
  }
  changes = e.evaluate(h, {}, t0 + minutes(69));
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_EQ(changes[0].name, "NinesErrorBudgetBurnFast");
  EXPECT_EQ(changes[1].name, "NinesErrorBudgetBurnMedium");
  EXPECT_TRUE(changes[0].firing);
  EXPECT_EQ(changes[0].labels.at("severity"), "page");
  EXPECT_NE(changes[0].summary.find("error budget burning"), std::string::npos);
  // Firing is reported once, not at every evaluation.
  EXPECT_TRUE(e.evaluate(h, {}, t0 + minutes(69) + seconds(10)).empty());
  EXPECT_EQ(e.firing().size(), 3U);
  // Errors stop: the 5-minute window clears first and resolves the fast burn; the others, whose
  // short windows are longer, go on.
  for (int m = 70; m < 76; ++m) {
    h.add(t0 + minutes(m), 1000, 0, {});
  }
  changes = e.evaluate(h, {}, t0 + minutes(75) + seconds(30));
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].name, "NinesErrorBudgetBurnFast");
  EXPECT_FALSE(changes[0].firing);
  EXPECT_EQ(e.firing().size(), 2U);
}

TEST(alert_rules, too_few_requests_do_not_burn) {
  sla_history h;
  alert_evaluator e(settings());
  h.add(t0, 2, 1, {});  // 33% errors, three requests
  EXPECT_TRUE(e.evaluate(h, {}, t0).empty());
}

TEST(alert_rules, slow_first_tokens_alert_only_after_their_hold_time) {
  sla_history h;
  alert_settings s = settings();
  alert_evaluator e(s);
  for (int sec = 0; sec <= 240; sec += 10) {
    h.add(t0 + seconds(sec), 100, 0, ttft_of(3.0, 100));
    const auto changes = e.evaluate(h, {}, t0 + seconds(sec));
    if (sec < 180) {
      EXPECT_TRUE(changes.empty()) << sec;
    } else if (sec == 180) {
      ASSERT_EQ(changes.size(), 1U);
      EXPECT_EQ(changes[0].name, "NinesTTFTHigh");
    }
  }
}

TEST(alert_rules, an_error_spike_and_a_down_upstream) {
  sla_history h;
  alert_settings s = settings();
  s.error_spike_count = 5;
  s.upstream_down_for = seconds(60);
  s.burn_min_requests = 1000000;  // only the spike here
  alert_evaluator e(s);
  h.add(t0, 100, 6, {});
  const upstream_condition down[] = {{"gpu-a", true, "ejected"}, {"gpu-b", false, ""}};
  auto changes = e.evaluate(h, down, t0);
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].name, "NinesErrorSpike");
  changes = e.evaluate(h, down, t0 + seconds(61));
  ASSERT_EQ(changes.size(), 1U);
  EXPECT_EQ(changes[0].name, "NinesUpstreamDown");
  EXPECT_EQ(changes[0].labels.at("upstream"), "gpu-a");
  const upstream_condition up[] = {{"gpu-a", false, ""}, {"gpu-b", false, ""}};
  changes = e.evaluate(h, up, t0 + seconds(400));  // the spike is out of its window too
  ASSERT_EQ(changes.size(), 2U);
  for (const auto& c : changes) {
    EXPECT_FALSE(c.firing);
  }
}

}  // namespace
}  // namespace nines::core
