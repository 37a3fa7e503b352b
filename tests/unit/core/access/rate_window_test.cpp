#include "core/access/rate_window.hpp"

#include <gtest/gtest.h>

#include "core/random.hpp"

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
const steady::time_point t0 = steady::time_point(std::chrono::hours(1000));

TEST(rate_window, admits_up_to_the_limit_then_says_when_there_is_room) {
  rate_window w(3);
  EXPECT_FALSE(w.admit(1, t0));
  EXPECT_FALSE(w.admit(1, t0 + milliseconds(200)));
  EXPECT_FALSE(w.admit(1, t0 + milliseconds(1500)));
  const auto wait = w.admit(1, t0 + milliseconds(2000));
  ASSERT_TRUE(wait);
  // The first two leave the window when their second is 60 s old.
  EXPECT_EQ(*wait, milliseconds(58000));
  EXPECT_EQ(w.remaining(t0 + milliseconds(2000)), 0U);
  EXPECT_FALSE(w.admit(1, t0 + milliseconds(60000)));
  EXPECT_EQ(w.used(t0 + milliseconds(60000)), 2U);  // one left, one came
}

TEST(rate_window, an_amount_larger_than_the_limit_never_fits) {
  rate_window w(100);
  EXPECT_EQ(w.admit(101, t0), milliseconds(60000));
  EXPECT_EQ(w.used(t0), 0U);
}

TEST(rate_window, settling_corrects_a_reservation_in_its_bucket) {
  rate_window w(1000);
  EXPECT_FALSE(w.admit(800, t0));
  w.settle(t0, -700, t0 + milliseconds(5000));  // it used 100
  EXPECT_EQ(w.used(t0 + milliseconds(5000)), 100U);
  EXPECT_FALSE(w.admit(900, t0 + milliseconds(5000)));
  w.settle(t0 + milliseconds(5000), 50, t0 + milliseconds(6000));  // and this one 950
  EXPECT_EQ(w.used(t0 + milliseconds(6000)), 1050U);
  // A settlement for a bucket gone from the window changes nothing.
  w.settle(t0, -100, t0 + milliseconds(62000));
  EXPECT_EQ(w.used(t0 + milliseconds(62000)), 950U);
}

// Over ten simulated minutes of clients asking far more than the limit, at random times, the
// admitted amount stays within 2% of the limit, and never above it in any 59-second span.
TEST(rate_window, holds_the_limit_within_two_percent_over_a_long_run) {
  for (const std::uint64_t limit : {60U, 600U, 6000U}) {
    rate_window w(limit);
    splitmix_rng rng(limit);
    std::vector<std::int64_t> admitted_ms;
    const std::int64_t run_ms = 10 * 60 * 1000;
    for (std::int64_t t = 0; t < run_ms; t += static_cast<std::int64_t>(rng.below(20))) {
      if (!w.admit(1, t0 + milliseconds(t))) {
        admitted_ms.push_back(t);
      }
    }
    const double expected = static_cast<double>(limit) * 10;
    EXPECT_LE(static_cast<double>(admitted_ms.size()), expected) << limit;
    EXPECT_GE(static_cast<double>(admitted_ms.size()), expected * 0.98) << limit;
    // No span of 59 s holds more than the limit.
    std::size_t lo = 0;
    for (std::size_t hi = 0; hi < admitted_ms.size(); ++hi) {
      while (admitted_ms[hi] - admitted_ms[lo] >= 59000) {
        ++lo;
      }
      ASSERT_LE(hi - lo + 1, limit) << "at " << admitted_ms[hi] << " ms";
    }
  }
}

TEST(rate_window, unlimited_admits_everything_and_counts_nothing) {
  rate_window w(0);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(w.admit(1000, t0));
  }
  EXPECT_EQ(w.used(t0), 0U);
}

TEST(rate_window, reset_in_is_when_the_oldest_counted_amount_leaves) {
  rate_window w(10);
  EXPECT_EQ(w.reset_in(t0), milliseconds(0));
  w.admit(1, t0 + milliseconds(300));
  EXPECT_EQ(w.reset_in(t0 + milliseconds(1300)), milliseconds(58700));
}

}  // namespace
}  // namespace nines::core
