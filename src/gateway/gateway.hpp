#pragma once
// `nines gateway`: builds the shared state from a validated config, starts one worker per core,
// and runs until SIGTERM/SIGINT, which drains: stop accepting, close idle connections, let
// in-flight requests and streams finish for up to gateway.drain_timeout_ms, then exit.

#include "core/config.hpp"

namespace nines::gateway {

// Returns the process exit code. Throws on startup failures (bind, TLS files, log file).
int run_gateway(const core::config& config);

}  // namespace nines::gateway
