#pragma once
// A limit per minute, held over a sliding window of the last 60 seconds in one-second buckets:
// what was admitted in the window, plus what is asked now, must stay within the limit. Unlike a
// token bucket there is no burst on top of the rate: any 59 seconds hold at most the limit (a
// minute may hold a little more, by what its first and last second share), and over a long run
// the admitted rate converges to the limit (within 2% over ten minutes).
//
// Amounts are requests (1 each) or tokens: a request reserves its token estimate at admission and
// settles the difference when its usage is known (`settle`, in the bucket it was admitted in; a
// settlement for a bucket that has left the window changes nothing).
//
// Pure, no clock of its own: times are passed in. Not thread-safe (the gateway holds one lock per
// key around it).

#include <array>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>

namespace nines::core {

class rate_window {
 public:
  using clock_time = std::chrono::steady_clock::time_point;

  explicit rate_window(std::uint64_t limit_per_minute = 0) : limit_(limit_per_minute) {}

  // Admits `amount` at `now` when it fits (and counts it): nullopt. Otherwise, how long until it
  // would fit (nothing is counted); an amount larger than the limit never fits: a minute.
  std::optional<std::chrono::milliseconds> admit(std::uint64_t amount, clock_time now);

  // Corrects an amount admitted at `admitted_at` by `delta` (usage known: more or less than
  // reserved). The total never goes below zero.
  void settle(clock_time admitted_at, std::int64_t delta, clock_time now);

  std::uint64_t used(clock_time now);
  std::uint64_t remaining(clock_time now) { return limit_ > used(now) ? limit_ - used(now) : 0; }
  std::uint64_t limit() const { return limit_; }
  bool unlimited() const { return limit_ == 0; }
  // Until the oldest amount still counted leaves the window (0 when nothing is counted).
  std::chrono::milliseconds reset_in(clock_time now);

  void set_limit(std::uint64_t limit_per_minute) { limit_ = limit_per_minute; }

 private:
  static constexpr std::size_t buckets = 60;
  static std::int64_t second_of(clock_time t);
  void advance(std::int64_t second);  // forget buckets that left the window

  std::uint64_t limit_;
  std::array<std::uint64_t, buckets> counts_{};
  std::int64_t newest_ = std::numeric_limits<std::int64_t>::min();  // second of the newest bucket
  std::uint64_t total_ = 0;
};

}  // namespace nines::core
