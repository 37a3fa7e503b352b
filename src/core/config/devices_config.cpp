#include "core/config/devices_config.hpp"

#include <set>

#include "core/config/admin_config.hpp"
#include "core/config/alerting_config.hpp"
#include "core/devices/adb_wire.hpp"

namespace nines::core {

void read_devices_section(toml_reader& r, const toml::table& t, devices_settings& d) {
  const std::string p = "devices.";
  r.unknown_keys(
      t, p,
      {"adb_server", "probe_interval_ms", "probe_timeout_ms", "retry_every_ms",
       "suspect_after_misses", "zombie_after_hangs", "offline_after_ms", "offline_min_misses",
       "remove_after_ms", "max_devices", "per_device_metrics", "network", "adb_proxy", "hold_ms",
       "alert_offline_after_ms", "online_objective_percent"});
  r.duration(t, p, "alert_offline_after_ms", d.alerts.offline_for, 1000);
  double objective = d.alerts.online_objective * 100;
  r.number(t, p, "online_objective_percent", objective, 50, 99.99999);
  d.alerts.online_objective = objective / 100;
  if (const toml::node* node = t.get("adb_proxy")) {
    const auto v = node->value_exact<std::string>();
    const auto a = v ? parse_listen_address(*v) : std::nullopt;
    if (!a || !is_ip_literal(a->host) || !is_loopback(*a)) {
      r.problem(p + "adb_proxy", node,
                "must be a loopback \"IP:port\", e.g. \"127.0.0.1:5038\" (the ADB protocol has no "
                "authentication: whoever reaches the proxy runs commands on every phone)");
    } else {
      d.adb_proxy = *v;
    }
  }
  r.duration(t, p, "hold_ms", d.hold, 0);
  if (const toml::node* node = t.get("adb_server")) {
    const auto v = node->value_exact<std::string>();
    const auto a = v ? parse_listen_address(*v) : std::nullopt;
    if (!a || a->port == 0 || !is_ip_literal(a->host)) {
      r.problem(p + "adb_server", node,
                "must be \"IP:port\" of the adb server, e.g. \"127.0.0.1:5037\"");
    } else {
      d.adb_server = *v;
    }
  }
  auto& policy = d.policy;
  r.duration(t, p, "probe_interval_ms", policy.probe_interval, 100);
  r.duration(t, p, "probe_timeout_ms", policy.probe_timeout, 50);
  r.duration(t, p, "retry_every_ms", policy.retry_every, 20);
  r.integer(t, p, "suspect_after_misses", policy.suspect_after_misses, 1, 100);
  r.integer(t, p, "zombie_after_hangs", policy.zombie_after_hangs, 1, 100);
  r.duration(t, p, "offline_after_ms", policy.offline_after, 100);
  r.integer(t, p, "offline_min_misses", policy.offline_min_misses, 1, 1000);
  r.duration(t, p, "remove_after_ms", policy.remove_after, 1000);
  r.integer(t, p, "max_devices", d.max_devices, 1, 100000);
  r.boolean(t, p, "per_device_metrics", d.per_device_metrics);
  std::set<std::string> seen;
  r.array(t, p, "network",
          "must be an array of tables: [[devices.network]] address = \"host:port\"",
          [&](const toml::node& item, const std::string& path) {
            const auto* table = item.as_table();
            if (table == nullptr) {
              r.problem(path, &item, "must be a table with address = \"host:port\"");
              return;
            }
            r.unknown_keys(*table, path + ".", {"address"});
            const toml::node* node = table->get("address");
            const auto v = node ? node->value_exact<std::string>() : std::nullopt;
            if (!v || !parse_network_serial(*v)) {
              r.problem(path + ".address", node ? node : &item,
                        "must be a phone's \"host:port\" (adb tcpip), e.g. \"192.168.1.20:5555\"");
              return;
            }
            if (!seen.insert(*v).second) {
              r.problem(path + ".address", node, "is listed twice");
              return;
            }
            d.network.push_back(*v);
          });
}

void validate_devices(const devices_config& c, std::vector<config_problem>& problems) {
  validate_devices_settings(c.devices, problems);
  validate_admin(c.admin, problems);
}

void validate_devices_settings(const devices_settings& d, std::vector<config_problem>& problems) {
  const auto& policy = d.policy;
  if (policy.probe_timeout >= policy.probe_interval) {
    problems.push_back(
        {"devices.probe_timeout_ms", 0, 0, "must be below devices.probe_interval_ms"});
  }
  if (policy.retry_every > policy.probe_timeout) {
    problems.push_back({"devices.retry_every_ms", 0, 0,
                        "must not be above devices.probe_timeout_ms (a miss is retried before "
                        "the next would be due)"});
  }
  if (d.network.size() > d.max_devices) {
    problems.push_back({"devices.network", 0, 0, "lists more addresses than devices.max_devices"});
  }
}

devices_config_result parse_devices_config(std::string_view toml_text, std::string_view source) {
  devices_config_result result;
  auto parsed = parse_toml(toml_text, source, result.problems);
  if (!parsed) {
    return result;
  }
  toml_reader r(result.problems);
  r.unknown_keys(*parsed, "", {"devices", "admin", "alerting"});
  if (const auto* t = r.section(*parsed, "devices")) {
    read_devices_section(r, *t, result.config.devices);
  }
  if (const auto* t = r.section(*parsed, "admin")) {
    read_admin(r, *t, result.config.admin);
  }
  if (const auto* t = r.section(*parsed, "alerting")) {
    read_alerting(r, *t, result.config.alerting);
  }
  return result;
}

}  // namespace nines::core
