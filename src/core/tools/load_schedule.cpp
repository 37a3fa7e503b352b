#include "core/tools/load_schedule.hpp"

#include <cmath>

namespace nines::core {

load_schedule::duration load_schedule::due(std::uint64_t index) const {
  if (!open_loop()) {
    return duration::zero();
  }
  return duration(static_cast<std::int64_t>(std::floor(static_cast<double>(index) * 1e9 / rate_)));
}

std::uint64_t load_schedule::due_by(duration elapsed) const {
  if (!open_loop()) {
    return UINT64_MAX;
  }
  if (elapsed < duration::zero()) {
    return 0;
  }
  // Requests 0..k are due when k / rate <= elapsed; guard the floating point edge by checking.
  auto k = static_cast<std::uint64_t>(std::floor(static_cast<double>(elapsed.count()) * rate_ / 1e9));
  while (due(k + 1) <= elapsed) {
    ++k;
  }
  while (k > 0 && due(k) > elapsed) {
    --k;
  }
  return k + 1;
}

load_schedule::duration load_schedule::interval() const {
  if (!open_loop()) {
    return duration::zero();
  }
  return duration(static_cast<std::int64_t>(std::llround(1e9 / rate_)));
}

}  // namespace nines::core
