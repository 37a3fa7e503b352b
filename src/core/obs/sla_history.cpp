#include "core/obs/sla_history.hpp"

#include <algorithm>

namespace nines::core {

sla_history::sla_history(std::chrono::seconds bucket, std::size_t buckets)
    : bucket_(std::max(bucket, std::chrono::seconds(1))), ring_(std::max<std::size_t>(buckets, 2)) {}

std::int64_t sla_history::index_of(time_point t) const {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count() /
         bucket_.count();
}

void sla_history::add(time_point at, std::uint64_t good, std::uint64_t bad, const ttft_counts& ttft) {
  const auto index = index_of(at);
  auto& b = ring_[static_cast<std::size_t>(index % static_cast<std::int64_t>(ring_.size()))];
  if (b.index != index) {
    b = bucket{};
    b.index = index;
  }
  b.good += good;
  b.bad += bad;
  for (std::size_t i = 0; i < ttft.size(); ++i) {
    b.ttft[i] += ttft[i];
  }
}

sla_history::window sla_history::over(time_point now, std::chrono::seconds span) const {
  const auto last = index_of(now);
  const auto count = std::min<std::int64_t>(
      static_cast<std::int64_t>(ring_.size()),
      std::max<std::int64_t>(1, (span.count() + bucket_.count() - 1) / bucket_.count()));
  window w;
  ttft_counts ttft{};
  for (std::int64_t index = last - count + 1; index <= last; ++index) {
    const auto& b = ring_[static_cast<std::size_t>(
        ((index % static_cast<std::int64_t>(ring_.size())) + static_cast<std::int64_t>(ring_.size())) %
        static_cast<std::int64_t>(ring_.size()))];
    if (b.index != index) {
      continue;
    }
    w.good += b.good;
    w.bad += b.bad;
    for (std::size_t i = 0; i < ttft.size(); ++i) {
      ttft[i] += b.ttft[i];
    }
  }
  if (w.good + w.bad > 0) {
    w.availability = static_cast<double>(w.good) / static_cast<double>(w.good + w.bad);
  }
  w.ttft_p50_s = quantile_of(ttft, 0.5);
  w.ttft_p99_s = quantile_of(ttft, 0.99);
  return w;
}

std::vector<sla_history::point> sla_history::series(time_point now, std::chrono::seconds span) const {
  const auto last = index_of(now);
  const auto count = std::min<std::int64_t>(
      static_cast<std::int64_t>(ring_.size()),
      std::max<std::int64_t>(1, (span.count() + bucket_.count() - 1) / bucket_.count()));
  std::vector<point> out;
  out.reserve(static_cast<std::size_t>(count));
  const auto now_s = std::chrono::duration<double>(now.time_since_epoch()).count();
  for (std::int64_t index = last - count + 1; index <= last; ++index) {
    const auto& b = ring_[static_cast<std::size_t>(
        ((index % static_cast<std::int64_t>(ring_.size())) + static_cast<std::int64_t>(ring_.size())) %
        static_cast<std::int64_t>(ring_.size()))];
    point p;
    const double start_s = static_cast<double>(index * bucket_.count());
    p.age_s = std::max(0.0, now_s - start_s);
    if (b.index == index) {
      // The current bucket has only been running for part of its length.
      const double length = index == last ? std::max(1.0, now_s - start_s)
                                          : static_cast<double>(bucket_.count());
      p.requests_per_second = static_cast<double>(b.good + b.bad) / length;
      if (b.good + b.bad > 0) {
        p.availability = static_cast<double>(b.good) / static_cast<double>(b.good + b.bad);
      }
      p.ttft_p50_s = quantile_of(b.ttft, 0.5);
      p.ttft_p99_s = quantile_of(b.ttft, 0.99);
    }
    out.push_back(p);
  }
  return out;
}

std::optional<double> quantile_of(const sla_history::ttft_counts& counts, double q) {
  std::uint64_t total = 0;
  for (auto c : counts) {
    total += c;
  }
  if (total == 0) {
    return std::nullopt;
  }
  const double rank = q * static_cast<double>(total);
  std::uint64_t seen = 0;
  const auto& bounds = sla_history::ttft_bounds;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) {
      continue;
    }
    if (static_cast<double>(seen + counts[i]) >= rank) {
      if (i == bounds.size()) {
        return bounds.back();  // +Inf: the highest finite bound, as histogram_quantile does
      }
      const double lower = i == 0 ? 0.0 : bounds[i - 1];
      const double upper = bounds[i];
      const double into = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
      return lower + (upper - lower) * std::clamp(into, 0.0, 1.0);
    }
    seen += counts[i];
  }
  return bounds.back();
}

std::size_t ttft_bucket(double seconds) {
  const auto& bounds = sla_history::ttft_bounds;
  return static_cast<std::size_t>(std::lower_bound(bounds.begin(), bounds.end(), seconds) -
                                  bounds.begin());
}

}  // namespace nines::core
