#include "core/devices/online_ledger.hpp"

#include <algorithm>

namespace nines::core {
namespace {

using std::chrono::milliseconds;

std::int64_t index_of(std::chrono::steady_clock::time_point t, milliseconds size) {
  const auto ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
  return ms >= 0 ? ms / size.count() : (ms - size.count() + 1) / size.count();
}

std::chrono::steady_clock::time_point start_of(std::int64_t index, milliseconds size) {
  return std::chrono::steady_clock::time_point(milliseconds(index * size.count()));
}

}  // namespace

template <std::size_t N>
void online_ledger::add(std::array<bucket, N>& ring, milliseconds size, time_point from,
                        time_point to, bool up) {
  // Only the last N buckets are kept: older time would be overwritten anyway.
  from = std::max(from, to - size * static_cast<std::int64_t>(N));
  while (from < to) {
    const auto i = index_of(from, size);
    const auto end = std::min(to, start_of(i + 1, size));
    auto& b = ring[static_cast<std::size_t>(i % static_cast<std::int64_t>(N))];
    if (b.index != i) {
      b = bucket{static_cast<std::int32_t>(i), 0, 0};
    }
    const auto ms =
        static_cast<std::uint32_t>(std::chrono::duration_cast<milliseconds>(end - from).count());
    b.known_ms += ms;
    if (up) {
      b.up_ms += ms;
    }
    from = end;
  }
}

template <std::size_t N>
online_span online_ledger::sum(const std::array<bucket, N>& ring, milliseconds size,
                               time_point from_aligned) {
  online_span s;
  s.from = from_aligned;
  const auto first = index_of(from_aligned, size);
  for (const auto& b : ring) {
    if (b.index >= first) {
      s.up += milliseconds(b.up_ms);
      s.known += milliseconds(b.known_ms);
    }
  }
  return s;
}

void online_ledger::record(time_point t, bool up) {
  if (!started_) {
    started_ = true;
    up_ = up;
    last_ = t;
    return;
  }
  t = std::max(t, last_);
  add(fine_, fine, last_, t, up_);
  add(coarse_, coarse, last_, t, up_);
  last_ = t;
  up_ = up;
}

online_span online_ledger::span(milliseconds window, time_point now) const {
  const bool use_fine = window <= std::chrono::duration_cast<milliseconds>(
                                      fine * static_cast<std::int64_t>(fine_buckets - 1));
  const milliseconds size = use_fine ? milliseconds(fine) : milliseconds(coarse);
  const auto reach =
      size * static_cast<std::int64_t>((use_fine ? fine_buckets : coarse_buckets) - 1);
  window = std::min(window, std::chrono::duration_cast<milliseconds>(reach));
  const auto from = start_of(index_of(now - window, size), size);
  auto s = use_fine ? sum(fine_, size, from) : sum(coarse_, size, from);
  if (started_ && now > last_) {
    // Since the last change: not in the buckets yet.
    const auto open = std::chrono::duration_cast<milliseconds>(now - std::max(last_, from));
    s.known += open;
    if (up_) {
      s.up += open;
    }
  }
  return s;
}

}  // namespace nines::core
