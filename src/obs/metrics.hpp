#pragma once
// Metrics for Prometheus: counters, gauges and histograms with labels, exposed in the text format
// (version 0.0.4). Names are stable, prefixed `nines_`, with their unit in the name, and listed in
// docs/metrics.md.
//
// Thread per core: every counter and histogram has one shard per worker, each on its own cache
// line, so that workers never write a shared line; a scrape sums the shards. The hot path never
// looks a metric up by name: each module resolves the children it needs once (at start, or the
// first time a label value is seen) into a probe object of its own and then only adds to cells.
//
// Thread-safety: the registry's lookups take a mutex (start-up and first sight of a label value
// only); adding to a metric is a relaxed atomic on the caller's shard; exposition may run on any
// thread at any time.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nines::obs {

using labels = std::vector<std::pair<std::string, std::string>>;

// One value per shard, each on its own cache line.
class sharded_value {
 public:
  explicit sharded_value(unsigned shards);
  void add(unsigned shard, std::uint64_t n) {
    cells_[shard % shards_].value.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t sum() const;

 private:
  struct alignas(64) cell {
    std::atomic<std::uint64_t> value{0};
  };
  std::unique_ptr<cell[]> cells_;
  unsigned shards_;
};

class counter {
 public:
  explicit counter(unsigned shards) : value_(shards) {}
  void add(unsigned shard, std::uint64_t n = 1) { value_.add(shard, n); }
  std::uint64_t value() const { return value_.sum(); }

 private:
  sharded_value value_;
};

// A value that goes up and down, set by its owner from any thread.
class gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) {
    double have = value_.load(std::memory_order_relaxed);
    while (!value_.compare_exchange_weak(have, have + d, std::memory_order_relaxed)) {
    }
  }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations in seconds into cumulative buckets with fixed upper bounds (Prometheus's le).
class histogram {
 public:
  histogram(std::span<const double> bounds, unsigned shards);
  void observe(unsigned shard, double seconds);

  struct snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    std::uint64_t count = 0;
    double sum = 0;
  };
  snapshot read() const;
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  unsigned shards_;
  std::vector<std::unique_ptr<sharded_value>> buckets_;  // per bound and +Inf (not cumulative)
  sharded_value sum_nanos_;
};

// Bucket bounds, in seconds.
std::span<const double> latency_buckets();  // 1 ms .. 60 s
std::span<const double> gap_buckets();      // 1 ms .. 30 s, finer at the low end

class registry {
 public:
  explicit registry(unsigned shards) : shards_(std::max(shards, 1U)) {}
  unsigned shards() const { return shards_; }

  // Get-or-create. The reference stays valid for the registry's life.
  counter& counter_of(std::string_view name, std::string_view help, const labels& l = {});
  gauge& gauge_of(std::string_view name, std::string_view help, const labels& l = {});
  histogram& histogram_of(std::string_view name, std::string_view help,
                          std::span<const double> bounds, const labels& l = {});
  // A gauge computed when scraped (pool sizes, journal bytes). The function must be callable from
  // any thread for as long as the registry lives, or until it is replaced by another with the same
  // name and labels.
  void gauge_function(std::string_view name, std::string_view help, const labels& l,
                      std::function<double()> read);
  // The same for a count that only grows, kept by its owner (evictions, say).
  void counter_function(std::string_view name, std::string_view help, const labels& l,
                        std::function<double()> read);

  // Counter and gauge values by name and labels, for tests and /status (0 when absent).
  double value(std::string_view name, const labels& l = {}) const;

  // The Prometheus text exposition of every metric.
  std::string exposition() const;

 private:
  enum class kind { counter, gauge, histogram };
  struct child {
    std::unique_ptr<counter> c;
    std::unique_ptr<gauge> g;
    std::unique_ptr<histogram> h;
    std::function<double()> read;
  };
  struct family {
    std::string help;
    kind type = kind::counter;
    std::map<std::string, child> children;  // by rendered labels
  };
  family& family_of(std::string_view name, std::string_view help, kind type);

  unsigned shards_;
  mutable std::mutex mutex_;
  std::map<std::string, family, std::less<>> families_;
};

// `{a="x",b="y"}` with the text format's escapes; empty for no labels.
std::string render_labels(const labels& l);

}  // namespace nines::obs
