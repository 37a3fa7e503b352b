#pragma once
// How long one phone was online, over the last hour, day and 30 days: time-weighted, from the
// times its state changed. Each change adds the time since the previous one to the buckets it
// covers: minute buckets for the hour, hour buckets for the day and the month. So memory is fixed
// (about 9 KiB a phone, however often it flaps) and a window's rate is exact over the whole
// buckets it covers: "the last hour" is the span from the start of the minute an hour ago until
// now, and the answer says which span it measured.
//
// Threading: none; one owner.

#include <array>
#include <chrono>
#include <cstdint>

namespace nines::core {

struct online_span {
  std::chrono::steady_clock::time_point from{};  // the start of the first bucket counted
  std::chrono::milliseconds up{0};               // online within the span
  std::chrono::milliseconds known{0};            // tracked within the span (from the first record)
  // up / known; 1 with nothing known yet.
  double rate() const {
    return known.count() == 0 ? 1.0 : static_cast<double>(up.count()) / known.count();
  }
  online_span& operator+=(const online_span& o) {
    up += o.up;
    known += o.known;
    return *this;
  }
};

class online_ledger {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  static constexpr std::chrono::minutes fine{1};
  static constexpr std::chrono::hours coarse{1};
  static constexpr std::size_t fine_buckets = 64;     // an hour and a bit
  static constexpr std::size_t coarse_buckets = 724;  // 30 days and a bit

  // From `t` on the phone is online (`up`) or not. Times must not go backwards (an earlier `t`
  // counts as the last one).
  void record(time_point t, bool up);

  // The window of length `window` ending at `now`; at most 30 days (the coarse buckets' reach),
  // fine buckets for windows up to an hour.
  online_span span(std::chrono::milliseconds window, time_point now) const;

  bool started() const { return started_; }
  bool up() const { return up_; }

 private:
  struct bucket {
    std::int32_t index = -1;  // which minute/hour since the clock's epoch; -1: empty
    std::uint32_t up_ms = 0;
    std::uint32_t known_ms = 0;
  };
  template <std::size_t N>
  static void add(std::array<bucket, N>& ring, std::chrono::milliseconds size, time_point from,
                  time_point to, bool up);
  template <std::size_t N>
  static online_span sum(const std::array<bucket, N>& ring, std::chrono::milliseconds size,
                         time_point from_aligned);

  bool started_ = false;
  bool up_ = false;
  time_point last_{};
  std::array<bucket, fine_buckets> fine_{};
  std::array<bucket, coarse_buckets> coarse_{};
};

}  // namespace nines::core
