// The device keeper's alerts on simulated time: a phone away fires only once away for longer than
// offline_for (and a zombie counts as away), is resolved on its return or its removal; the fleet's
// rate fires under the objective and never for an empty fleet.

#include "core/devices/device_alerts.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using time_point = std::chrono::steady_clock::time_point;

TEST(device_alerts, a_phone_away_fires_after_offline_for_and_is_resolved_on_its_return) {
  alert_evaluator ev{alert_settings{}};
  device_alert_settings s;
  s.offline_for = milliseconds(5000);
  const time_point t0{};
  std::vector<device_condition> fleet{{"a", device_state::online}, {"b", device_state::offline}};
  EXPECT_TRUE(evaluate_device_alerts(ev, s, fleet, 1.0, t0).empty());
  fleet[1].state = device_state::reconnecting;  // still away: the wait goes on
  EXPECT_TRUE(evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(4999)).empty());
  const auto fired = evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(5000));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].name, "NinesDeviceOffline");
  EXPECT_TRUE(fired[0].firing);
  EXPECT_EQ(fired[0].labels.at("serial"), "b");
  EXPECT_TRUE(evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(6000)).empty());
  fleet[1].state = device_state::online;
  const auto resolved = evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(7000));
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_FALSE(resolved[0].firing);
  EXPECT_TRUE(ev.firing().empty());
}

TEST(device_alerts, a_blink_shorter_than_offline_for_says_nothing_and_a_zombie_counts_as_away) {
  alert_evaluator ev{alert_settings{}};
  device_alert_settings s;
  s.offline_for = milliseconds(5000);
  const time_point t0{};
  std::vector<device_condition> fleet{{"a", device_state::offline}};
  evaluate_device_alerts(ev, s, fleet, 1.0, t0);
  fleet[0].state = device_state::online;
  EXPECT_TRUE(evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(4000)).empty());
  fleet[0].state = device_state::zombie;  // a new absence: its own five seconds
  EXPECT_TRUE(evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(6000)).empty());
  EXPECT_EQ(evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(11000)).size(), 1u);
}

TEST(device_alerts, a_phone_removed_while_alerted_is_resolved_and_forgotten) {
  alert_evaluator ev{alert_settings{}};
  device_alert_settings s;
  s.offline_for = milliseconds(0);
  const time_point t0{};
  std::vector<device_condition> fleet{{"gone", device_state::offline}};
  ASSERT_EQ(evaluate_device_alerts(ev, s, fleet, 1.0, t0).size(), 1u);
  fleet[0].state = device_state::removed;
  const auto changes = evaluate_device_alerts(ev, s, fleet, 1.0, t0 + milliseconds(1));
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_FALSE(changes[0].firing);
  EXPECT_EQ(changes[0].labels.at("serial"), "gone");
  EXPECT_TRUE(ev.firing().empty());
}

TEST(device_alerts, the_fleet_under_its_objective_pages_and_an_empty_fleet_never_does) {
  alert_evaluator ev{alert_settings{}};
  device_alert_settings s;
  s.online_objective = 0.999;
  const time_point t0{};
  EXPECT_TRUE(evaluate_device_alerts(ev, s, {}, 0.0, t0).empty());
  std::vector<device_condition> fleet{{"a", device_state::online}};
  EXPECT_TRUE(evaluate_device_alerts(ev, s, fleet, 0.9991, t0).empty());
  const auto low = evaluate_device_alerts(ev, s, fleet, 0.998, t0 + milliseconds(1));
  ASSERT_EQ(low.size(), 1u);
  EXPECT_EQ(low[0].name, "NinesFleetOnlineLow");
  EXPECT_EQ(low[0].labels.at("severity"), "page");
  EXPECT_NE(low[0].summary.find("99.800%"), std::string::npos) << low[0].summary;
  EXPECT_FALSE(evaluate_device_alerts(ev, s, fleet, 0.9995, t0 + milliseconds(2)).at(0).firing);
}

}  // namespace
}  // namespace nines::core
