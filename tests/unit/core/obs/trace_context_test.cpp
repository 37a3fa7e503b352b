#include "core/obs/trace_context.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(trace_context, a_valid_traceparent_is_continued_with_a_new_span) {
  splitmix_rng random(1);
  const auto t = continue_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", random);
  EXPECT_EQ(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t.parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(t.span_id.size(), 16U);
  EXPECT_NE(t.span_id, t.parent_id);
  EXPECT_EQ(t.traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-" + t.span_id + "-01");
  // An unsampled trace stays unsampled.
  const auto u = continue_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", random);
  EXPECT_EQ(u.flags, 0);
}

TEST(trace_context, invalid_values_start_a_new_trace) {
  for (const char* bad : {"", "garbage",
                          "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01"}) {
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
    splitmix_rng random(2);
    const auto t = continue_trace(bad, random);
    EXPECT_EQ(t.trace_id.size(), 32U) << bad;
    EXPECT_TRUE(t.parent_id.empty()) << bad;
    EXPECT_TRUE(parse_traceparent(t.traceparent())) << t.traceparent();
  }
}

}  // namespace
}  // namespace nines::core
