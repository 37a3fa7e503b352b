#include "core/routing/upstream_selector.hpp"

#include <gtest/gtest.h>

#include "core/routing/upstream_cooldown.hpp"

namespace nines::core {
namespace {

TEST(upstream_selector, lowest_priority_tier_first) {
  std::vector<upstream_candidate> c{{1, 1, true}, {0, 1, true}, {2, 1, true}};
  splitmix_rng r(3);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(select_upstream(c, 0, r), 1U);
  }
}

TEST(upstream_selector, weights_share_a_tier) {
  std::vector<upstream_candidate> c{{0, 1, true}, {0, 3, true}};
  splitmix_rng r(7);
  int second = 0;
  for (int i = 0; i < 4000; ++i) {
    second += *select_upstream(c, 0, r) == 1 ? 1 : 0;
  }
  EXPECT_NEAR(second / 4000.0, 0.75, 0.03);
}

TEST(upstream_selector, avoids_tried_then_unavailable_but_never_returns_nothing) {
  std::vector<upstream_candidate> c{{0, 1, true}, {1, 1, true}, {2, 1, false}};
  c[2].cooling = true;
  splitmix_rng r(1);
  EXPECT_EQ(select_upstream(c, 0b001, r), 1U);   // 0 tried: next tier
  EXPECT_EQ(select_upstream(c, 0b011, r), 0U);   // only 2 fresh but cooling: reuse available 0
  std::vector<upstream_candidate> down{{0, 1, false}, {0, 1, false}};
  EXPECT_TRUE(select_upstream(down, 0, r).has_value());  // all cooling: still try one
  EXPECT_TRUE(select_upstream(down, 0b11, r).has_value());
  EXPECT_FALSE(select_upstream(std::vector<upstream_candidate>{}, 0, r).has_value());
}

TEST(upstream_cooldown, doubles_from_base_to_cap) {
  cooldown_policy p{std::chrono::milliseconds(500), std::chrono::milliseconds(10000)};
  EXPECT_EQ(cooldown_for(p, 0), std::chrono::milliseconds(0));
  EXPECT_EQ(cooldown_for(p, 1), std::chrono::milliseconds(500));
  EXPECT_EQ(cooldown_for(p, 2), std::chrono::milliseconds(1000));
  EXPECT_EQ(cooldown_for(p, 10), std::chrono::milliseconds(10000));
}

}  // namespace
}  // namespace nines::core

namespace nines::core {
namespace {

std::vector<int> picks(std::vector<upstream_candidate> c, int n, selection_context ctx = {},
                       std::uint64_t tried = 0) {
  splitmix_rng r(5);
  std::vector<int> counts(c.size());
  for (int i = 0; i < n; ++i) {
    if (auto k = select_upstream(c, tried, r, ctx)) {
      counts[*k]++;
    }
  }
  return counts;
}

TEST(upstream_selector, two_choices_prefer_the_less_loaded_and_healthier) {
  std::vector<upstream_candidate> c(3);
  c[0].in_flight = 10;
  auto counts = picks(c, 3000);
  // The loaded one is chosen only when both draws are it: never, with two distinct draws.
  EXPECT_EQ(counts[0], 0);
  EXPECT_NEAR(counts[1], 1500, 150);
  c[0].in_flight = 0;
  c[1].score = 0.2;  // five times the cost
  counts = picks(c, 3000);
  EXPECT_LT(counts[1], 100);
}

TEST(upstream_selector, an_upstream_failing_fast_does_not_attract_the_load) {
  std::vector<upstream_candidate> c(3);
  c[2].failures_in_row = 3;  // nothing in flight: it answers 503 at once
  const auto counts = picks(c, 3000);
  EXPECT_EQ(counts[2], 0);
}

TEST(upstream_selector, an_upstream_whose_attempts_hedges_cancel_does_not_attract_the_load) {
  // Slow to first token: hedges beat it and cancel its attempts, so it has nothing in flight
  // while the fast ones each carry two streams.
  std::vector<upstream_candidate> c(3);
  c[0].in_flight = 2;
  c[1].in_flight = 2;
  EXPECT_GT(picks(c, 3000)[2], 1500);  // without its losses it looks the least loaded
  c[2].races_lost = 3;  // cost 4 against 3
  EXPECT_EQ(picks(c, 3000)[2], 0);
  c[2].races_lost = 1;  // cost 2 against 3: one loss is not yet enough against that load
  EXPECT_GT(picks(c, 3000)[2], 1500);
}

TEST(upstream_selector, the_tier_in_use_wins_over_a_better_one_still_in_hysteresis) {
  std::vector<upstream_candidate> c{{0, 1, true}, {1, 1, true}};
  selection_context ctx;
  ctx.active_priority = 1;
  EXPECT_EQ(picks(c, 100, ctx)[1], 100);
  // Once tried, the other tier serves the retry.
  EXPECT_EQ(picks(c, 100, ctx, 0b10)[0], 100);
}

TEST(upstream_selector, panic_spreads_over_the_whole_tier_and_limits_are_never_crossed) {
  std::vector<upstream_candidate> c(3);
  c[0].available = false;
  c[1].available = false;
  auto counts = picks(c, 3000);
  EXPECT_EQ(counts[2], 3000);  // no panic: the one healthy upstream takes it all
  for (auto& x : c) {
    x.panic = true;
  }
  counts = picks(c, 3000);
  EXPECT_GT(counts[0], 500);  // panic: the load is spread
  EXPECT_GT(counts[1], 500);
  c[2].at_limit = true;
  counts = picks(c, 3000);
  EXPECT_EQ(counts[2], 0);
  for (auto& x : c) {
    x.at_limit = true;
  }
  splitmix_rng r(1);
  EXPECT_FALSE(select_upstream(c, 0, r).has_value());  // overflow: nothing to choose
}

TEST(upstream_selector, a_retry_prefers_an_untried_ejected_upstream_to_one_that_just_failed) {
  std::vector<upstream_candidate> c(3);
  c[2].available = false;  // ejected, not cooling
  splitmix_rng r(1);
  EXPECT_EQ(select_upstream(c, 0b011, r), 2U);
  c[2].cooling = true;  // refusing connections: reuse a tried one
  EXPECT_NE(select_upstream(c, 0b011, r), 2U);
  // A retry skips upstreams whose retry tokens are spent, while others can serve.
  std::vector<upstream_candidate> t(2);
  t[0].retry_ok = false;
  selection_context retry;
  retry.retry = true;
  EXPECT_EQ(picks(t, 100, retry)[1], 100);
}

}  // namespace
}  // namespace nines::core
