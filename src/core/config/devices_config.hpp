#pragma once
// The device keeper's configuration (`nines devices --config FILE`): `[devices]` (the adb server,
// the detector's timings, limits, `[[devices.network]]` addresses), `[admin]` and `[alerting]`. Every problem
// is collected with its place, as for the gateway's file (docs/config.md, `[devices]`).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config.hpp"
#include "core/config/toml_reader.hpp"
#include "core/devices/device_lifecycle.hpp"

namespace nines::core {

struct devices_config {
  devices_settings devices;
  admin_settings admin{{"127.0.0.1", 9903}, {}};
  alerting_config alerting;  // [alerting]: the webhooks the keeper's alerts go to
};

struct devices_config_result {
  devices_config config;
  std::vector<config_problem> problems;
};

// The `[devices]` table (also for a role that embeds the keeper).
void read_devices_section(toml_reader& r, const toml::table& t, devices_settings& d);
// The timings of `d` that contradict each other.
void validate_devices_settings(const devices_settings& d, std::vector<config_problem>& problems);
// Reads the file; validate_devices() follows once the command line's overrides are applied.
devices_config_result parse_devices_config(std::string_view toml_text, std::string_view source);
// What no single key shows: timings that contradict each other, the admin key beyond loopback.
void validate_devices(const devices_config& c, std::vector<config_problem>& problems);

}  // namespace nines::core
