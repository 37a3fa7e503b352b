#include "core/routing/backoff.hpp"

#include <gtest/gtest.h>

#include "core/routing/retry_policy.hpp"

namespace nines::core {
namespace {

using std::chrono::milliseconds;

TEST(backoff, ceiling_doubles_then_caps) {
  backoff_policy p{milliseconds(25), milliseconds(1000)};
  EXPECT_EQ(backoff_ceiling(p, 0), milliseconds(25));
  EXPECT_EQ(backoff_ceiling(p, 1), milliseconds(50));
  EXPECT_EQ(backoff_ceiling(p, 3), milliseconds(200));
  EXPECT_EQ(backoff_ceiling(p, 6), milliseconds(1000));
  EXPECT_EQ(backoff_ceiling(p, 4000), milliseconds(1000));  // no overflow for huge indices
}

TEST(backoff, full_jitter_stays_within_zero_and_ceiling) {
  backoff_policy p{milliseconds(10), milliseconds(100)};
  splitmix_rng random(42);
  milliseconds lowest(1000), highest(0);
  for (int i = 0; i < 2000; ++i) {
    auto d = full_jitter_delay(p, 2, random);
    lowest = std::min(lowest, d);
    highest = std::max(highest, d);
    ASSERT_GE(d, milliseconds(0));
    ASSERT_LE(d, milliseconds(40));
  }
  // Full jitter uses the whole range, not a narrow band near the ceiling.
  EXPECT_LE(lowest, milliseconds(2));
  EXPECT_GE(highest, milliseconds(38));
}

TEST(backoff, draw_is_taken_from_the_injected_rng) {
  backoff_policy p{milliseconds(100), milliseconds(1000)};
  fixed_rng always(250);
  // 250 mod (ceiling + 1): the first retry's ceiling is 100.
  EXPECT_EQ(full_jitter_delay(p, 0, always), milliseconds(250 % 101));
}

TEST(retry_policy, statuses_and_failures) {
  retry_policy p;
  for (unsigned s : {429U, 502U, 503U, 504U}) {
    EXPECT_TRUE(is_retryable_status(p, s)) << s;
  }
  for (unsigned s : {200U, 400U, 401U, 403U, 404U, 422U, 500U}) {
    EXPECT_FALSE(is_retryable_status(p, s)) << s;
  }
  EXPECT_TRUE(is_retryable_failure(attempt_failure::connect_refused));
  EXPECT_TRUE(is_retryable_failure(attempt_failure::first_byte_timeout));
  EXPECT_FALSE(is_retryable_failure(attempt_failure::response_too_large));
}

TEST(retry_policy, stops_after_max_attempts) {
  retry_policy p;
  p.max_attempts = 3;
  splitmix_rng r(1);
  const auto left = std::chrono::seconds(30);
  EXPECT_TRUE(plan_next_attempt(p, attempt_failure::reset, 1, left, {}, false, r).retry);
  EXPECT_TRUE(plan_next_attempt(p, attempt_failure::reset, 2, left, {}, false, r).retry);
  auto third = plan_next_attempt(p, attempt_failure::reset, 3, left, {}, false, r);
  EXPECT_FALSE(third.retry);
  EXPECT_EQ(third.why_not, "attempts exhausted");
}

TEST(retry_policy, retry_after_applies_only_to_the_same_upstream_and_must_fit_the_deadline) {
  retry_policy p;
  fixed_rng zero(0);
  const auto ra = std::optional<milliseconds>(milliseconds(2000));
  // Going elsewhere: no need to wait for the other upstream's Retry-After.
  auto elsewhere = plan_next_attempt(p, attempt_failure::retryable_status, 1,
                                     std::chrono::seconds(30), ra, false, zero);
  EXPECT_TRUE(elsewhere.retry);
  EXPECT_EQ(elsewhere.delay, milliseconds(0));
  // Same upstream: wait what it asked.
  auto same = plan_next_attempt(p, attempt_failure::retryable_status, 1, std::chrono::seconds(30),
                                ra, true, zero);
  EXPECT_TRUE(same.retry);
  EXPECT_EQ(same.delay, milliseconds(2000));
  // Same upstream, but the wait does not fit the deadline: give up now.
  auto late = plan_next_attempt(p, attempt_failure::retryable_status, 1, std::chrono::seconds(1),
                                ra, true, zero);
  EXPECT_FALSE(late.retry);
  EXPECT_EQ(late.why_not, "deadline");
}

TEST(retry_policy, parses_retry_after_seconds_only) {
  EXPECT_EQ(parse_retry_after("3"), milliseconds(3000));
  EXPECT_EQ(parse_retry_after(" 0 "), milliseconds(0));
  EXPECT_FALSE(parse_retry_after("-1"));
  EXPECT_FALSE(parse_retry_after("soon"));
  EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  EXPECT_FALSE(parse_retry_after("999999999"));
  EXPECT_FALSE(parse_retry_after(""));
}

}  // namespace
}  // namespace nines::core
