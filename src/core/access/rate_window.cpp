#include "core/access/rate_window.hpp"

#include <algorithm>

namespace nines::core {
namespace {

using std::chrono::milliseconds;

std::int64_t millis_of(rate_window::clock_time t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

std::size_t slot(std::int64_t second) {
  const auto m = second % 60;
  return static_cast<std::size_t>(m < 0 ? m + 60 : m);
}

}  // namespace

std::int64_t rate_window::second_of(clock_time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

void rate_window::advance(std::int64_t second) {
  if (newest_ == std::numeric_limits<std::int64_t>::min() || second - newest_ >= 60) {
    counts_.fill(0);
    total_ = 0;
    newest_ = second;
    return;
  }
  for (; newest_ < second; ++newest_) {
    auto& c = counts_[slot(newest_ + 1)];
    total_ -= c;
    c = 0;
  }
}

std::optional<milliseconds> rate_window::admit(std::uint64_t amount, clock_time now) {
  if (unlimited()) {
    return std::nullopt;
  }
  const auto s = second_of(now);
  advance(s);
  if (total_ + amount <= limit_) {
    counts_[slot(newest_)] += amount;
    total_ += amount;
    return std::nullopt;
  }
  if (amount > limit_) {
    return milliseconds(60000);
  }
  // The earliest time the buckets leaving the window free enough.
  std::uint64_t freed = 0;
  for (std::int64_t sec = newest_ - 59; sec <= newest_; ++sec) {
    freed += counts_[slot(sec)];
    if (total_ - freed + amount <= limit_) {
      return std::max(milliseconds(1), milliseconds((sec + 60) * 1000 - millis_of(now)));
    }
  }
  return milliseconds(60000);
}

void rate_window::settle(clock_time admitted_at, std::int64_t delta, clock_time now) {
  if (unlimited() || delta == 0) {
    return;
  }
  advance(std::max(second_of(now), newest_));
  const auto a = second_of(admitted_at);
  if (a <= newest_ - 60 || a > newest_) {
    return;  // no longer (or not yet) in the window
  }
  auto& c = counts_[slot(a)];
  if (delta < 0) {
    const auto less = std::min<std::uint64_t>(c, static_cast<std::uint64_t>(-delta));
    c -= less;
    total_ -= less;
  } else {
    c += static_cast<std::uint64_t>(delta);
    total_ += static_cast<std::uint64_t>(delta);
  }
}

std::uint64_t rate_window::used(clock_time now) {
  advance(std::max(second_of(now), newest_));
  return total_;
}

milliseconds rate_window::reset_in(clock_time now) {
  advance(std::max(second_of(now), newest_));
  for (std::int64_t sec = newest_ - 59; sec <= newest_; ++sec) {
    if (counts_[slot(sec)] > 0) {
      return std::max(milliseconds(1), milliseconds((sec + 60) * 1000 - millis_of(now)));
    }
  }
  return milliseconds(0);
}

}  // namespace nines::core
