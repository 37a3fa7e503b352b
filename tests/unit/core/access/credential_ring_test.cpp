#include "core/access/credential_ring.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);

TEST(credential_ring, keys_are_used_in_turn_and_a_refused_one_is_skipped_until_its_cooldown_ends) {
  credential_ring ring(3);
  std::vector<std::size_t> picked;
  for (int i = 0; i < 6; ++i) {
    picked.push_back(*ring.choose(t0));
  }
  EXPECT_EQ(picked, (std::vector<std::size_t>{0, 1, 2, 0, 1, 2}));

  EXPECT_EQ(ring.refused(1, t0), credential_ring::first_cooldown);
  EXPECT_EQ(ring.usable(t0), 2U);
  for (int i = 0; i < 10; ++i) {
    EXPECT_NE(*ring.choose(t0 + seconds(29)), 1U);
  }
  bool back = false;
  for (int i = 0; i < 3; ++i) {
    back = back || *ring.choose(t0 + seconds(30)) == 1U;
  }
  EXPECT_TRUE(back) << "usable again once its cooldown ended";
}

TEST(credential_ring, cooldowns_double_with_each_refusal_in_a_row_and_a_success_resets_them) {
  credential_ring ring(1);
  EXPECT_EQ(ring.refused(0, t0), seconds(30));
  EXPECT_EQ(ring.refused(0, t0), seconds(60));
  EXPECT_EQ(ring.refused(0, t0), seconds(120));
  for (int i = 0; i < 10; ++i) {
    ring.refused(0, t0);
  }
  EXPECT_EQ(ring.refused(0, t0), credential_ring::longest_cooldown);
  EXPECT_FALSE(ring.choose(t0 + seconds(599)));
  ring.cleared(0);
  EXPECT_EQ(ring.choose(t0), 0U);
  EXPECT_EQ(ring.refused(0, t0), seconds(30));
}

TEST(credential_ring, keys_this_request_already_tried_are_excluded) {
  credential_ring ring(3);
  EXPECT_EQ(ring.choose(t0, 0b011), 2U);
  EXPECT_EQ(ring.choose(t0, 0b110), 0U);
  EXPECT_FALSE(ring.choose(t0, 0b111));
  ring.refused(2, t0);
  EXPECT_FALSE(ring.choose(t0, 0b011));
}

TEST(token_refresh_time, five_minutes_or_a_tenth_before_expiry_and_never_in_the_first_half) {
  EXPECT_EQ(token_refresh_time(t0, seconds(1800)), t0 + seconds(1500));   // 5 min before
  EXPECT_EQ(token_refresh_time(t0, seconds(3600)), t0 + seconds(3240));   // 10% before
  EXPECT_EQ(token_refresh_time(t0, seconds(86400)), t0 + seconds(77760)); // 10% before
  EXPECT_EQ(token_refresh_time(t0, seconds(600)), t0 + seconds(300));     // exactly half
  EXPECT_EQ(token_refresh_time(t0, seconds(60)), t0 + seconds(54));       // 90% of a short one
  EXPECT_EQ(token_refresh_time(t0, seconds(5)), t0 + seconds(4));
  EXPECT_EQ(token_refresh_time(t0, seconds(2)), t0 + seconds(1));
  EXPECT_EQ(token_refresh_time(t0, seconds(1)), t0 + seconds(1)) << "never back to back";
  EXPECT_EQ(token_refresh_time(t0, seconds(0)), t0 + std::chrono::hours(1));
}

// Five simulated minutes of 60 s tokens: a token is always valid when a request needs one, and
// the token endpoint is asked at most once per token lifetime (plus the first).
TEST(token_refresh_time, sixty_second_tokens_for_five_minutes_never_lapse_and_are_fetched_once_each) {
  const seconds life(60);
  auto now = t0;
  auto expires = t0 + life;
  auto refresh_at = token_refresh_time(t0, life);
  int fetched = 1;
  for (; now < t0 + std::chrono::minutes(5); now += milliseconds(250)) {
    if (now >= refresh_at) {
      ++fetched;  // issued now
      expires = now + life;
      refresh_at = token_refresh_time(now, life);
    }
    ASSERT_LT(now, expires) << "the token lapsed";
  }
  EXPECT_LE(fetched, 300 / 60 + 1);
}

}  // namespace
}  // namespace nines::core
