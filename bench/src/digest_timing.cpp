// Does comparing a presented key's digest with a stored one take the same time wherever they
// differ? A dudect-style measurement (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant
// time?", 2017) of core::same_digest: two classes of inputs — digests that differ in their first
// byte and digests that differ only in their last — measured in random interleaved order, then
// Welch's t-statistic of the two timing distributions (cropped at the 90th percentile against
// interrupts). |t| below 4.5 is dudect's "no leak found"; a byte-by-byte early-exit compare gives
// |t| in the hundreds. Part of `make bench` (bench/tls.sh), never a test: it is a measurement.
//
//   build/bench_digest_timing [SAMPLES]   prints "t=<value> samples=<n> early_ns=<x> late_ns=<y>"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/access/secret_digest.hpp"

namespace {

// An early-exit comparison, for contrast (`--naive`): what same_digest must not be.
bool naive_equal(const nines::core::secret_digest& a, const nines::core::secret_digest& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      return false;
    }
  }
  return true;
}

struct moments {
  double n = 0, mean = 0, m2 = 0;
  void add(double x) {
    n += 1;
    const double d = x - mean;
    mean += d / n;
    m2 += d * (x - mean);
  }
  double variance() const { return n > 1 ? m2 / (n - 1) : 0; }
};

}  // namespace

int main(int argc, char** argv) {
  bool naive = false;
  std::size_t samples = 2000000;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--naive") {
      naive = true;
    } else {
      samples = std::strtoull(argv[i], nullptr, 10);
    }
  }
  samples = std::clamp<std::size_t>(samples, 1000, 50000000);
  const auto stored = nines::core::sha256_of("nk-the-stored-secret");
  auto early = stored;
  early[0] ^= 0x5a;
  auto late = stored;
  late[31] ^= 0x5a;
  std::mt19937_64 random(42);
  std::vector<unsigned char> classes(samples);
  for (auto& c : classes) {
    c = static_cast<unsigned char>(random() & 1U);
  }
  std::vector<double> times(samples);
  volatile bool sink = false;
  constexpr int batch = 64;  // one timing covers 64 compares: the clock's resolution is ~20 ns
  nines::core::secret_digest probe{};  // one buffer for both classes: same address, same lines
  for (std::size_t i = 0; i < samples; ++i) {
    probe = classes[i] != 0 ? late : early;
    const auto t0 = std::chrono::steady_clock::now();
    for (int k = 0; k < batch; ++k) {
      sink = naive ? naive_equal(stored, probe) : nines::core::same_digest(stored, probe);
    }
    const auto t1 = std::chrono::steady_clock::now();
    times[i] = std::chrono::duration<double, std::nano>(t1 - t0).count() / batch;
  }
  (void)sink;
  std::vector<double> sorted = times;
  std::nth_element(sorted.begin(), sorted.begin() + samples * 9 / 10, sorted.end());
  const double crop = sorted[samples * 9 / 10];
  moments m[2];
  for (std::size_t i = 0; i < samples; ++i) {
    if (times[i] <= crop) {
      m[classes[i]].add(times[i]);
    }
  }
  const double t = (m[0].mean - m[1].mean) /
                   std::sqrt(m[0].variance() / m[0].n + m[1].variance() / m[1].n);
  std::printf("t=%.2f samples=%zu early_ns=%.2f late_ns=%.2f\n", t, samples, m[0].mean, m[1].mean);
  return 0;
}
