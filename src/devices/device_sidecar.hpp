#pragma once
// The device keeper with what runs beside it, for a role to host: its io_context, the keeper
// (device_keeper.hpp) and the ADB proxy (adb_proxy.hpp) when `[devices] adb_proxy` is set.
// `nines devices` runs it on its main thread; `nines edge` with a `[devices]` table on a thread of
// its own, its /devices and metrics on the edge's admin listener.
//
// Threading: run()/start() once; stop() and stop_now() from any thread.

#include <optional>
#include <string>
#include <thread>

#include "core/config/config.hpp"
#include "devices/adb_proxy.hpp"
#include "devices/device_keeper.hpp"

namespace nines::devices {

// The adb server named by `configured` ("IP:port"), else by ANDROID_ADB_SERVER_SOCKET
// ("tcp:PORT", "tcp:HOST:PORT"), else ANDROID_ADB_SERVER_PORT, else 127.0.0.1:5037; nullopt and
// `problem` when the one that applies is not usable.
std::optional<adb_server_address> resolve_adb_server(const std::string& configured,
                                                     std::string& problem);

class device_sidecar {
 public:
  // Opens the ADB proxy's listener when there is one (throws when it cannot: startup).
  device_sidecar(const core::devices_settings& settings, adb_server_address adb,
                 std::uint64_t seed);
  ~device_sidecar();
  device_sidecar(const device_sidecar&) = delete;
  device_sidecar& operator=(const device_sidecar&) = delete;

  // Runs the keeper on this thread until it has stopped; or on a thread of its own.
  void run();
  void start();
  // Stops: probes and connects under way end at their deadlines, then run() returns (and the
  // thread of start() ends; the destructor joins it). stop_now() does not wait for them.
  void stop();
  void stop_now();

  const device_keeper& keeper() const { return keeper_; }
  std::optional<std::uint16_t> proxy_port() const { return proxy_port_; }
  const adb_server_address& adb() const { return adb_; }

 private:
  net::asio::io_context io_{1};
  adb_server_address adb_;
  device_keeper keeper_;
  std::optional<adb_proxy> proxy_;
  std::optional<std::uint16_t> proxy_port_;
  std::thread thread_;
};

}  // namespace nines::devices
