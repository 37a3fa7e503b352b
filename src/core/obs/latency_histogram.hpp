#pragma once
// A latency histogram in the manner of HdrHistogram: log-linear buckets that keep every recorded
// value to `significant_digits` decimal digits of precision over the whole range, in fixed memory
// (with 3 digits and a range of 1 µs to 1 hour: 23,552 counters, 184 KiB), so that p99.9 and
// max of a long run cost the same as those of a short one, and histograms merge by addition.
//
// Values are integers in the caller's unit (nines bench records microseconds). A value over the
// range is clamped to the highest trackable value and counted as such.
//
// Coordinated omission: a closed-loop load generator waits for each answer before sending the
// next request, so a stall of the server delays the requests that would have been sent meanwhile
// and they are never measured. `record_corrected` adds the missing samples the way HdrHistogram's
// recordValueWithExpectedInterval does; an open-loop generator (nines bench --rate) needs no
// correction, because it measures every request from its intended send time.
//
// Not thread-safe: one histogram per thread, merged at the end.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nines::core {

class latency_histogram {
 public:
  // `highest` is the largest value tracked with full precision; significant_digits in [1, 5].
  explicit latency_histogram(std::uint64_t highest = 3'600'000'000ULL, int significant_digits = 3);

  void record(std::uint64_t value, std::uint64_t count = 1);

  // Records `value` and, when it exceeds `expected_interval` (the time between two requests of
  // the load), the samples a stalled closed loop did not send: value - interval, value - 2 ×
  // interval, ... while they are at least `expected_interval`.
  void record_corrected(std::uint64_t value, std::uint64_t expected_interval);

  // Adds every count of `other` (which must have the same layout).
  void merge(const latency_histogram& other);

  std::uint64_t count() const { return total_; }
  std::uint64_t min() const { return total_ == 0 ? 0 : min_; }
  std::uint64_t max() const { return max_; }
  double mean() const;

  // The smallest recorded value v such that `percentile` % of the values are <= v, reported as
  // the highest value equivalent to v's bucket (HdrHistogram's convention), but never above max().
  // percentile in [0, 100]; 0 when empty.
  std::uint64_t value_at_percentile(double percentile) const;

  // Whether two values fall into the same bucket (they are equal to the histogram's precision).
  bool equivalent(std::uint64_t a, std::uint64_t b) const;

  void reset();

 private:
  std::size_t index_of(std::uint64_t value) const;
  std::uint64_t lowest_equivalent(std::size_t index) const;
  std::uint64_t highest_equivalent(std::size_t index) const;

  std::uint64_t highest_;
  unsigned sub_bucket_bits_;      // log2(sub_bucket_count)
  std::uint64_t sub_bucket_count_;
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace nines::core
