#pragma once
// Injected randomness, and the duration type of src/core. Nothing in src/core reads a clock:
// functions that depend on time take the time left or the time points as arguments, and those
// that depend on chance take an `rng`, so that tests choose both.

#include <chrono>
#include <cstdint>

namespace nines::core {

using clock_duration = std::chrono::nanoseconds;

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
