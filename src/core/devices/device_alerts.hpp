#pragma once
// The device keeper's built-in alerts, sent through the same webhook notifier as the gateway's
// (gateway/alert_notifier.hpp, Alertmanager's format):
//
//   NinesDeviceOffline     warning  a phone away (offline, reconnecting or zombie) for longer than
//                                   `offline_for` (per serial)
//   NinesFleetOnlineLow    page     the fleet's online rate over the last hour under the objective
//
// Pure: evaluated with an alert_evaluator over the phones' states and the fleet's rate, with the
// time; what changed (fired or resolved) comes back.

#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "core/devices/device_lifecycle.hpp"
#include "core/obs/alert_rules.hpp"

namespace nines::core {

struct device_alert_settings {
  std::chrono::milliseconds offline_for{300000};
  double online_objective = 0.999;  // of the fleet's time online, over 1 h
};

struct device_condition {
  std::string serial;
  device_state state = device_state::online;
};

std::vector<alert> evaluate_device_alerts(alert_evaluator& evaluator,
                                          const device_alert_settings& settings,
                                          std::span<const device_condition> devices,
                                          double fleet_online_1h,
                                          std::chrono::steady_clock::time_point now);

}  // namespace nines::core
