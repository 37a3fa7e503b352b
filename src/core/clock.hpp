#pragma once
// Injected time and randomness. Everything in src/core that depends on "now" or on chance takes
// one of these, so that backoff, cooldowns and fault rates are tested on simulated time.

#include <chrono>
#include <cstdint>

namespace nines::core {

using clock_duration = std::chrono::nanoseconds;
using time_point = std::chrono::steady_clock::time_point;

class clock {
 public:
  virtual ~clock() = default;
  virtual time_point now() const = 0;
};

// The process's monotonic clock.
class steady_clock final : public clock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when told to. For tests.
class manual_clock final : public clock {
 public:
  time_point now() const override { return now_; }
  void advance(clock_duration d) { now_ += d; }

 private:
  time_point now_{std::chrono::hours(1)};
};

class rng {
 public:
  virtual ~rng() = default;
  virtual std::uint64_t next() = 0;
  // Uniform in [0, 1).
  double uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n); 0 when n is 0.
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
};

// splitmix64: small, fast, good enough for jitter and fault injection; not for secrets.
class splitmix_rng final : public rng {
 public:
  explicit splitmix_rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() override {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

// A scripted sequence, for tests that need exact draws.
class fixed_rng final : public rng {
 public:
  explicit fixed_rng(std::uint64_t value) : value_(value) {}
  std::uint64_t next() override { return value_; }

 private:
  std::uint64_t value_;
};

}  // namespace nines::core
