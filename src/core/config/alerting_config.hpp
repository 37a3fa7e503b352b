#pragma once
// The `[alerting]` table (the built-in alerts' rules and the webhooks they go to), read the same
// way by the gateway's and edge's configuration (config.cpp) and the device keeper's
// (devices_config.cpp).

#include "core/config/config.hpp"
#include "core/config/toml_reader.hpp"

namespace nines::core {

void read_alerting(toml_reader& r, const toml::table& t, alerting_config& a);

}  // namespace nines::core
