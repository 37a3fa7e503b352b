// The online rate against known up/down schedules: the rate over each window is checked against
// the schedule integrated over the span the ledger says it measured.

#include "core/devices/online_ledger.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "core/random.hpp"

namespace nines::core {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;
using steady = std::chrono::steady_clock;
using time_point = steady::time_point;

const time_point t0 = time_point{} + hours(1000) + milliseconds(12345);

// Time online in [from, to) under a schedule of (time, up) changes, the first at or before `from`.
milliseconds up_between(const std::vector<std::pair<time_point, bool>>& changes, time_point from,
                        time_point to) {
  milliseconds up{0};
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const auto start = std::max(from, changes[i].first);
    const auto end = std::min(to, i + 1 < changes.size() ? changes[i + 1].first : to);
    if (changes[i].second && end > start) {
      up += std::chrono::duration_cast<milliseconds>(end - start);
    }
  }
  return up;
}

struct schedule_case {
  std::vector<std::pair<time_point, bool>> changes;
  online_ledger ledger;
  void change(time_point t, bool up) {
    changes.emplace_back(t, up);
    ledger.record(t, up);
  }
  void check(milliseconds window, time_point now) const {
    const auto s = ledger.span(window, now);
    ASSERT_LE(s.from, now - std::min(window, milliseconds(hours(24 * 30))));
    const auto from = std::max(s.from, changes.front().first);
    const auto known = std::chrono::duration_cast<milliseconds>(now - from);
    const auto up = up_between(changes, from, now);
    EXPECT_EQ(s.known, known) << window.count();
    EXPECT_EQ(s.up, up) << window.count();
    const double expected = static_cast<double>(up.count()) / known.count();
    EXPECT_NEAR(s.rate(), expected, 0.001) << window.count();
  }
};

TEST(online_ledger, a_known_schedule_gives_its_rate_over_the_hour_the_day_and_30_days) {
  schedule_case c;
  // 50 minutes up, 10 down, then an afternoon of short blinks, then a long outage, for 40 days.
  auto t = t0;
  for (int day = 0; day < 40; ++day) {
    for (int h = 0; h < 20; ++h) {
      c.change(t, true);
      c.change(t + minutes(50), false);
      t += hours(1);
    }
    for (int blink = 0; blink < 600; ++blink) {
      c.change(t, true);
      c.change(t + seconds(17), false);
      t += seconds(19);
    }
    c.change(t, false);
    t += hours(24) - hours(20) - seconds(19 * 600);
  }
  c.change(t, true);
  const auto now = t + minutes(7) + milliseconds(333);
  for (const auto w :
       {milliseconds(hours(1)), milliseconds(hours(24)), milliseconds(hours(24 * 30))}) {
    c.check(w, now);
  }
  const auto mid = t - hours(5) - minutes(3);  // inside a day, before its last changes
  online_ledger partial;
  for (const auto& [at, up] : c.changes) {
    if (at <= mid) {
      partial.record(at, up);
    }
  }
  schedule_case before;
  before.ledger = partial;
  for (const auto& ch : c.changes) {
    if (ch.first <= mid) {
      before.changes.push_back(ch);
    }
  }
  for (const auto w : {milliseconds(hours(1)), milliseconds(hours(24))}) {
    before.check(w, mid);
  }
}

TEST(online_ledger, a_phone_tracked_for_less_than_the_window_is_rated_over_the_time_known) {
  schedule_case c;
  c.change(t0, true);
  c.change(t0 + minutes(30), false);
  c.check(milliseconds(hours(24)), t0 + minutes(40));
  const auto s = c.ledger.span(milliseconds(hours(24)), t0 + minutes(40));
  EXPECT_EQ(s.known, milliseconds(minutes(40)));
  EXPECT_NEAR(s.rate(), 0.75, 1e-9);
}

TEST(online_ledger, nothing_known_is_no_downtime) {
  online_ledger l;
  const auto s = l.span(milliseconds(hours(1)), t0);
  EXPECT_EQ(s.known.count(), 0);
  EXPECT_EQ(s.rate(), 1.0);
}

TEST(online_ledger, a_phone_flapping_at_random_keeps_its_rate_exact_in_fixed_memory) {
  schedule_case c;
  splitmix_rng random(7);
  auto t = t0;
  bool up = true;
  for (int i = 0; i < 200000; ++i) {
    c.change(t, up);
    t += milliseconds(1 + random.below(up ? 3000 : 300));
    up = !up;
  }
  static_assert(sizeof(online_ledger) < 10 * 1024);
  c.check(milliseconds(hours(1)), t);
  c.check(milliseconds(hours(24)), t);
}

}  // namespace
}  // namespace nines::core
