#pragma once
// `nines devices`: the device keeper on its own (src/devices), with its admin listener; and
// `nines devices status [URL]`, its GET /devices as a table.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace nines::app {

struct devices_options {
  std::string config_path;
  std::string adb_server;  // --adb-server IP:PORT
  unsigned adb_port = 0;   // --adb-port (127.0.0.1)
  std::string admin_listen;
  std::vector<std::string> network;
  std::string adb_proxy;  // --adb-proxy 127.0.0.1:PORT
  int hold_ms = -1;       // --hold-ms; -1: the config's
  bool check_only = false;
  CLI::App* status = nullptr;
  std::string status_url = "http://127.0.0.1:9903";
  bool status_json = false;
};

CLI::App* add_devices_command(CLI::App& app, devices_options& options);
int run_devices_command(devices_options& options);

}  // namespace nines::app
