#pragma once
// `nines gateway`: builds the shared state from a validated config, starts one worker per core and
// the health monitor, and runs until SIGTERM/SIGINT, which drains: stop accepting, close idle
// connections, let in-flight requests and streams finish for up to gateway.drain_timeout_ms, then
// exit. SIGHUP, or a change of the config file, reloads the configuration without dropping a
// request (an invalid one is rejected with every problem logged, and the old one stays).

#include <string>

#include "core/config/config.hpp"

namespace nines::gateway {

// Returns the process exit code. Throws on startup failures (bind, TLS files, log file).
// `config_path` is the file to reload from (empty when the gateway runs from flags).
int run_gateway(const core::config& config, const std::string& config_path);

}  // namespace nines::gateway
