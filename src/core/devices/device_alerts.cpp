#include "core/devices/device_alerts.hpp"

#include <fmt/format.h>

#include <set>

namespace nines::core {

std::vector<alert> evaluate_device_alerts(alert_evaluator& evaluator,
                                          const device_alert_settings& settings,
                                          std::span<const device_condition> devices,
                                          double fleet_online_1h,
                                          std::chrono::steady_clock::time_point now) {
  std::vector<alert> changes;
  std::size_t kept = 0;
  std::set<std::string_view> present;
  for (const auto& d : devices) {
    if (d.state == device_state::removed) {
      continue;
    }
    ++kept;
    present.insert(d.serial);
    const bool away = d.state == device_state::offline || d.state == device_state::reconnecting ||
                      d.state == device_state::zombie;
    alert a;
    a.name = "NinesDeviceOffline";
    a.labels = {{"alertname", a.name}, {"severity", "warning"}, {"serial", d.serial}};
    a.summary =
        fmt::format("{} is {} (away for longer than {} s)", d.serial, device_state_name(d.state),
                    std::chrono::duration_cast<std::chrono::seconds>(settings.offline_for).count());
    evaluator.apply(std::move(a), away, settings.offline_for, now, changes);
  }
  alert fleet;
  fleet.name = "NinesFleetOnlineLow";
  fleet.labels = {{"alertname", fleet.name}, {"severity", "page"}};
  fleet.summary = fmt::format("the fleet was online {:.3f}% of the last hour (objective {:.3f}%)",
                              100 * fleet_online_1h, 100 * settings.online_objective);
  evaluator.apply(std::move(fleet), kept > 0 && fleet_online_1h < settings.online_objective,
                  std::chrono::milliseconds(0), now, changes);
  // A phone that went away for good (removed, or past max_devices) resolves its alert.
  for (auto a : evaluator.firing()) {
    if (a.name == "NinesDeviceOffline" && !present.contains(a.labels["serial"])) {
      a.summary = fmt::format("{} is no longer kept (removed)", a.labels["serial"]);
      evaluator.apply(std::move(a), false, settings.offline_for, now, changes);
    }
  }
  // A phone that went away for good (removed, or no longer listed) takes its alert with it once
  // resolved: the evaluator's memory follows the fleet.
  evaluator.forget_settled();
  return changes;
}

}  // namespace nines::core
