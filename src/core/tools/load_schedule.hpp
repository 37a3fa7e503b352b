#pragma once
// When an open-loop load generator intends to send each request (wrk2's model): request i of a
// constant-rate load is due at start + i / rate, whether or not earlier answers have arrived. Its
// latency is measured from that intended time, so time a request spent waiting for a free
// connection (because the server stalled) counts against the server, as a real user's would:
// the coordinated-omission correction. Pure: the caller supplies the clock readings.

#include <chrono>
#include <cstdint>

namespace nines::core {

class load_schedule {
 public:
  using duration = std::chrono::nanoseconds;

  // `rate` requests per second; rate <= 0 means closed loop (every request is due at once).
  explicit load_schedule(double rate) : rate_(rate) {}

  bool open_loop() const { return rate_ > 0; }
  double rate() const { return rate_; }

  // Offset from the start of the run at which request `index` (0-based) is due.
  duration due(std::uint64_t index) const;

  // How many requests are due by `elapsed` since the start (those with due(i) <= elapsed).
  std::uint64_t due_by(duration elapsed) const;

  // The time between two requests (0 in a closed loop): the expected interval for
  // latency_histogram::record_corrected.
  duration interval() const;

  // The latency of a request due at `due_offset` that completed at `done_offset` (both from the
  // start), or measured from `sent_offset` in a closed loop.
  duration latency(duration due_offset, duration sent_offset, duration done_offset) const {
    return done_offset - (open_loop() ? due_offset : sent_offset);
  }

 private:
  double rate_;
};

}  // namespace nines::core
