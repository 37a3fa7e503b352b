#include "core/obs/latency_histogram.hpp"

#include <gtest/gtest.h>

#include "core/tools/load_schedule.hpp"
#include "core/random.hpp"

namespace nines::core {
namespace {

TEST(latency_histogram, percentiles_of_a_uniform_sequence) {
  latency_histogram h;
  for (std::uint64_t v = 1; v <= 10000; ++v) {
    h.record(v);
  }
  EXPECT_EQ(h.count(), 10000U);
  EXPECT_EQ(h.min(), 1U);
  EXPECT_EQ(h.max(), 10000U);
  EXPECT_DOUBLE_EQ(h.mean(), 5000.5);
  EXPECT_TRUE(h.equivalent(h.value_at_percentile(50), 5000));
  EXPECT_TRUE(h.equivalent(h.value_at_percentile(90), 9000));
  EXPECT_TRUE(h.equivalent(h.value_at_percentile(99), 9900));
  EXPECT_TRUE(h.equivalent(h.value_at_percentile(99.9), 9990));
  EXPECT_EQ(h.value_at_percentile(100), 10000U);
}

// Three significant digits over the whole range: a reported percentile is the recorded value to
// within one part in a thousand.
TEST(latency_histogram, keeps_three_significant_digits_everywhere) {
  splitmix_rng random(7);
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t v = 1 + random.below(3'000'000'000ULL >> random.below(30));
    latency_histogram h;
    h.record(v);
    h.record(v * 4 + 10);  // so that p50 is not capped at the maximum
    const auto reported = h.value_at_percentile(50);
    ASSERT_GE(reported, v) << v;
    ASSERT_LE(reported - v, v / 1000) << v;
  }
}

// HdrHistogram's own example: 10,000 answers of 1 ms, then one stall of 100 s, measured by a
// closed loop that meant to send a request every 10 ms. Without correction the stall is one sample
// in 10,001 and p99 says 1 ms; corrected, the 10,000 requests the stall held back are counted.
TEST(latency_histogram, coordinated_omission_correction_adds_the_requests_a_stall_held_back) {
  latency_histogram raw;
  latency_histogram corrected;
  for (int i = 0; i < 10000; ++i) {
    raw.record(1000);
    corrected.record_corrected(1000, 10000);
  }
  raw.record(100'000'000);
  corrected.record_corrected(100'000'000, 10000);

  EXPECT_EQ(raw.count(), 10001U);
  EXPECT_TRUE(raw.equivalent(raw.value_at_percentile(99), 1000));
  EXPECT_EQ(raw.max(), 100'000'000U);

  EXPECT_EQ(corrected.count(), 20000U);  // 10,000 answers + the stall and 9,999 held-back requests
  EXPECT_TRUE(corrected.equivalent(corrected.value_at_percentile(50), 1000));
  EXPECT_TRUE(corrected.equivalent(corrected.value_at_percentile(75), 50'000'000));
  EXPECT_TRUE(corrected.equivalent(corrected.value_at_percentile(99), 98'000'000));
  EXPECT_EQ(corrected.value_at_percentile(100), 100'000'000U);
}

TEST(latency_histogram, merge_adds_counts_and_keeps_extremes) {
  latency_histogram a;
  latency_histogram b;
  for (int i = 0; i < 100; ++i) {
    a.record(10);
    b.record(1000);
  }
  b.record(5, 3);
  a.merge(b);
  EXPECT_EQ(a.count(), 203U);
  EXPECT_EQ(a.min(), 5U);
  EXPECT_EQ(a.max(), 1000U);
  EXPECT_EQ(a.value_at_percentile(1), 5U);
  EXPECT_EQ(a.value_at_percentile(40), 10U);
  EXPECT_TRUE(a.equivalent(a.value_at_percentile(60), 1000));
}

TEST(latency_histogram, values_over_the_range_are_clamped_and_empty_is_zero) {
  latency_histogram h(1'000'000, 2);
  EXPECT_EQ(h.value_at_percentile(99), 0U);
  EXPECT_EQ(h.min(), 0U);
  h.record(50'000'000);
  EXPECT_EQ(h.max(), 1'000'000U);
  EXPECT_EQ(h.count(), 1U);
  h.reset();
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.max(), 0U);
}

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(load_schedule, requests_are_due_at_a_constant_rate) {
  load_schedule s(200);  // one every 5 ms
  EXPECT_TRUE(s.open_loop());
  EXPECT_EQ(s.due(0), nanoseconds(0));
  EXPECT_EQ(s.due(1), milliseconds(5));
  EXPECT_EQ(s.due(200), milliseconds(1000));
  EXPECT_EQ(s.interval(), milliseconds(5));
  EXPECT_EQ(s.due_by(nanoseconds(-1)), 0U);
  EXPECT_EQ(s.due_by(nanoseconds(0)), 1U);
  EXPECT_EQ(s.due_by(milliseconds(4)), 1U);
  EXPECT_EQ(s.due_by(milliseconds(5)), 2U);
  EXPECT_EQ(s.due_by(milliseconds(1000)), 201U);
  // Rates that are not divisors of a second stay consistent with due().
  load_schedule odd(3);
  for (std::uint64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(odd.due_by(odd.due(i)), i + 1) << i;
    EXPECT_EQ(odd.due_by(odd.due(i) - nanoseconds(1)), i) << i;
  }
}

// A server that answers in 1 ms but stalls once for 1 s, loaded at 100 requests/s through one
// connection. The closed loop sends request k only after answer k-1 and measures from the send:
// it sees one slow request. The open loop measures from the intended time: every request due
// during the stall waited for it, and ~100 of them are slow, as users would have found.
TEST(load_schedule, open_loop_latency_counts_the_wait_a_stall_caused) {
  load_schedule open(100);
  load_schedule closed(0);
  const auto service = [](std::uint64_t i) { return i == 10 ? milliseconds(1000) : milliseconds(1); };
  latency_histogram open_h;
  latency_histogram closed_h;
  nanoseconds free_at(0);  // when the one connection is next free
  for (std::uint64_t i = 0; i < 300; ++i) {
    const auto due = open.due(i);
    const auto sent = std::max(due, free_at);
    const auto done = sent + service(i);
    free_at = done;
    open_h.record(std::chrono::duration_cast<milliseconds>(open.latency(due, sent, done)).count());
    closed_h.record(
        std::chrono::duration_cast<milliseconds>(closed.latency(due, sent, done)).count());
  }
  EXPECT_EQ(closed_h.value_at_percentile(99), 1U);
  EXPECT_EQ(closed_h.max(), 1000U);
  // Requests 11..109 were due during the stall: latencies from 991 ms down to ~1 ms.
  EXPECT_GE(open_h.value_at_percentile(90), 300U);
  EXPECT_EQ(open_h.max(), 1000U);
  // The correction of a closed loop's histogram recovers the same picture.
  latency_histogram corrected;
  for (std::uint64_t i = 0; i < 300; ++i) {
    corrected.record_corrected(service(i).count(), 10);
  }
  EXPECT_EQ(corrected.count(), 300U + 99U);
  EXPECT_GE(corrected.value_at_percentile(90), 300U);
}

}  // namespace
}  // namespace nines::core
