#include "core/obs/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace nines::core {

// The layout of HdrHistogram with a unit magnitude of 0 (the lowest distinguishable value is 1):
// bucket 0 holds [0, sub_bucket_count) one by one; bucket b > 0 holds the upper half of its
// sub-buckets, each of width 2^b, covering [sub_bucket_count << (b - 1), sub_bucket_count << b).
latency_histogram::latency_histogram(std::uint64_t highest, int significant_digits)
    : highest_(std::max<std::uint64_t>(highest, 2)) {
  significant_digits = std::clamp(significant_digits, 1, 5);
  const auto largest_single_unit = 2 * static_cast<std::uint64_t>(std::pow(10, significant_digits));
  sub_bucket_bits_ = static_cast<unsigned>(std::bit_width(largest_single_unit - 1));
  sub_bucket_count_ = std::uint64_t{1} << sub_bucket_bits_;
  std::size_t buckets = 1;
  while (buckets < 64 && (sub_bucket_count_ << (buckets - 1)) <= highest_) {
    ++buckets;
  }
  counts_.assign((buckets + 1) * (sub_bucket_count_ / 2), 0);
}

std::size_t latency_histogram::index_of(std::uint64_t value) const {
  const unsigned half_bits = sub_bucket_bits_ - 1;
  const auto magnitude = static_cast<unsigned>(std::bit_width(value | (sub_bucket_count_ - 1)));
  const unsigned bucket = magnitude - sub_bucket_bits_;
  const std::uint64_t sub = value >> bucket;
  return static_cast<std::size_t>((std::uint64_t{bucket + 1} << half_bits) + sub -
                                  (sub_bucket_count_ / 2));
}

std::uint64_t latency_histogram::lowest_equivalent(std::size_t index) const {
  if (index < sub_bucket_count_) {
    return index;
  }
  const unsigned half_bits = sub_bucket_bits_ - 1;
  const std::uint64_t bucket = (index >> half_bits) - 1;
  const std::uint64_t sub = (index & ((sub_bucket_count_ / 2) - 1)) + sub_bucket_count_ / 2;
  return sub << bucket;
}

std::uint64_t latency_histogram::highest_equivalent(std::size_t index) const {
  const unsigned half_bits = sub_bucket_bits_ - 1;
  const std::uint64_t bucket = index < sub_bucket_count_ ? 0 : (index >> half_bits) - 1;
  return lowest_equivalent(index) + (std::uint64_t{1} << bucket) - 1;
}

void latency_histogram::record(std::uint64_t value, std::uint64_t count) {
  if (count == 0) {
    return;
  }
  value = std::min(value, highest_);
  counts_[std::min(index_of(value), counts_.size() - 1)] += count;
  total_ += count;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value) * count;
}

void latency_histogram::record_corrected(std::uint64_t value, std::uint64_t expected_interval) {
  record(value);
  if (expected_interval == 0 || value <= expected_interval) {
    return;
  }
  for (std::uint64_t missing = value - expected_interval; missing >= expected_interval;
       missing -= expected_interval) {
    record(missing);
  }
}

void latency_histogram::merge(const latency_histogram& other) {
  const std::size_t n = std::min(counts_.size(), other.counts_.size());
  for (std::size_t i = 0; i < n; ++i) {
    counts_[i] += other.counts_[i];
  }
  total_ += other.total_;
  if (other.total_ > 0) {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
  sum_ += other.sum_;
}

double latency_histogram::mean() const {
  return total_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(total_));
}

std::uint64_t latency_histogram::value_at_percentile(double percentile) const {
  if (total_ == 0) {
    return 0;
  }
  percentile = std::clamp(percentile, 0.0, 100.0);
  auto wanted = static_cast<std::uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(total_)));
  wanted = std::clamp<std::uint64_t>(wanted, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= wanted) {
      return std::min(highest_equivalent(i), max_);
    }
  }
  return max_;
}

bool latency_histogram::equivalent(std::uint64_t a, std::uint64_t b) const {
  return index_of(std::min(a, highest_)) == index_of(std::min(b, highest_));
}

void latency_histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

}  // namespace nines::core
