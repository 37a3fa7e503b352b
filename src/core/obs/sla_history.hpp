#pragma once
// What clients saw, over time, in bounded memory: a ring of fixed-length buckets (by default 10 s,
// 8,640 of them: 24 hours in about 1.3 MiB), each holding the requests that count for
// availability (good: answered completely, including the client errors passed through; bad: every
// attempt failed, or a stream ended incomplete) and a coarse histogram of times to first token.
// The dashboard, /status and the built-in alert rules read windows and series from it.
//
// Pure: the caller adds counts with the time they belong to, and asks with the time it is now.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace nines::core {

class sla_history {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  // Upper bounds of the time-to-first-token histogram, in seconds (the last bucket is +Inf).
  static constexpr std::array<double, 15> ttft_bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,  0.5,    1,     2.5,  5,    10,  30, 60};
  using ttft_counts = std::array<std::uint64_t, ttft_bounds.size() + 1>;

  explicit sla_history(std::chrono::seconds bucket = std::chrono::seconds(10),
                       std::size_t buckets = 8640);

  void add(time_point at, std::uint64_t good, std::uint64_t bad, const ttft_counts& ttft);

  struct window {
    std::uint64_t good = 0;
    std::uint64_t bad = 0;
    std::optional<double> availability;  // good / (good + bad); none without requests
    std::optional<double> ttft_p50_s;
    std::optional<double> ttft_p99_s;
  };
  // The last `span` up to `now` (the current, partial bucket included).
  window over(time_point now, std::chrono::seconds span) const;

  struct point {
    double age_s = 0;  // how long before `now` the bucket started (0 for the current one)
    double requests_per_second = 0;
    std::optional<double> availability;
    std::optional<double> ttft_p50_s;
    std::optional<double> ttft_p99_s;
  };
  // One point per bucket over the last `span`, oldest first.
  std::vector<point> series(time_point now, std::chrono::seconds span) const;

  std::chrono::seconds bucket_length() const { return bucket_; }

 private:
  struct bucket {
    std::int64_t index = -1;  // which bucket of time this slot holds (-1: none)
    std::uint64_t good = 0;
    std::uint64_t bad = 0;
    ttft_counts ttft{};
  };
  std::int64_t index_of(time_point t) const;

  std::chrono::seconds bucket_;
  std::vector<bucket> ring_;
};

// The q-quantile (0..1) of a histogram over sla_history::ttft_bounds, interpolated linearly within
// its bucket as Prometheus's histogram_quantile does; none when empty.
std::optional<double> quantile_of(const sla_history::ttft_counts& counts, double q);

// The bucket of sla_history::ttft_bounds a time falls in.
std::size_t ttft_bucket(double seconds);

}  // namespace nines::core
