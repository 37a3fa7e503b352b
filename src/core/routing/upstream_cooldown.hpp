#pragma once
// How long an upstream is avoided after connection-level failures in a row (refused, connect
// timeout, TLS failure): it doubles from `base` up to `cap`, and one success ends it. While an
// upstream cools down, the selector prefers others but still uses it when nothing else is left, so
// a cooldown can never make the gateway refuse work it could have done.

#include <chrono>

namespace nines::core {

struct cooldown_policy {
  std::chrono::milliseconds base{500};
  std::chrono::milliseconds cap{10000};
};

std::chrono::milliseconds cooldown_for(const cooldown_policy& policy, unsigned consecutive_failures);

}  // namespace nines::core
