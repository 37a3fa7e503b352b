#pragma once
// The `[admin]` table and a `listen` key, read the same way by every role's configuration (the
// gateway's and edge's in config.cpp, the device keeper's in devices_config.cpp).

#include <string>
#include <vector>

#include "core/config/config.hpp"
#include "core/config/toml_reader.hpp"

namespace nines::core {

// `prefix + "listen"` of `t`, "host:port", into `out` (unchanged when absent or wrong).
void read_listen(toml_reader& r, const toml::table& t, const std::string& prefix,
                 listen_address& out);
// `[admin]`: listen and key_hash.
void read_admin(toml_reader& r, const toml::table& t, admin_settings& a);
// An admin listener beyond loopback needs key_hash.
void validate_admin(const admin_settings& a, std::vector<config_problem>& problems);

}  // namespace nines::core
