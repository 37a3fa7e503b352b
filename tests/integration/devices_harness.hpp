#pragma once
// What the device keeper's integration tests share: `nines devices` started on an adb server (the
// fake one or Debian's), its /devices read, and an agent's command sent the way the adb client
// sends it.

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace nines::test {

struct keeper {
  std::unique_ptr<process> proc;
  unsigned short admin_port = 0;
};

// `nines devices --adb-port PORT --admin-listen 127.0.0.1:0 EXTRA... [--config FILE(toml)]`,
// once its admin listener is up.
keeper start_keeper(unsigned short adb_port, std::vector<std::string> extra = {},
                    const std::string& toml = {});

boost::json::object devices_of(const keeper& k);
// A phone's state on /devices, "(absent)" when it is not listed.
std::string state_of(const keeper& k, const std::string& serial);
// Waits (eventually) for a phone's state.
bool reaches(const keeper& k, const std::string& serial, const std::string& state);

// An agent's command the way the adb client sends it: host:transport:SERIAL, then shell:COMMAND,
// its output read to the end. Blocking, with a 20 s bound on every read. "FAIL <message>" when
// adb (or the proxy) refused it.
std::string adb_command(unsigned short port, const std::string& serial, const std::string& command);

struct proxied_keeper {
  keeper k;
  unsigned short proxy_port = 0;
};
// The keeper with its ADB proxy on 127.0.0.1:0, holding for `hold_ms`.
proxied_keeper start_proxied_keeper(unsigned short adb_port, const std::string& hold_ms);

// A counter of the proxy's on /devices ("held", "held_served", "connections", ...).
std::uint64_t proxy_count(const keeper& k, const std::string& name);

}  // namespace nines::test
