#include "core/upstream_selector.hpp"

#include <gtest/gtest.h>

#include "core/upstream_cooldown.hpp"

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
