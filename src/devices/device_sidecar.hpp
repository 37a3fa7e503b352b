#pragma once
// The device keeper with what runs beside it, for a role to host: its io_context, the keeper
// (device_keeper.hpp), the ADB proxy (adb_proxy.hpp) when `[devices] adb_proxy` is set, and the
// keeper's alerts (core/devices/device_alerts.hpp) evaluated every `alerting.evaluation_interval`,
// sent to `[alerting] webhooks` by the gateway's notifier and shown as nines_alerts_firing.
// `nines devices` runs it on its main thread; `nines edge` with a `[devices]` table on a thread of
// its own, its /devices and metrics on the edge's admin listener.
//
// Threading: run()/start() once; stop() and stop_now() from any thread.

#include <optional>
#include <string>
#include <thread>

#include "core/config/config.hpp"
#include "core/devices/device_alerts.hpp"
#include "gateway/alert_notifier.hpp"
#include "obs/metrics.hpp"
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
  // Opens the ADB proxy's listener when there is one (throws when it cannot: startup). The
  // alerts' metrics go to `metrics` (writing as `shard`), which must outlive the sidecar;
  // `external_url` is linked from the notifications.
  device_sidecar(const core::devices_settings& settings, adb_server_address adb,
                 std::uint64_t seed, const core::alerting_config& alerting,
                 obs::registry& metrics, unsigned shard, std::string external_url);
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
  net::awaitable<void> watch_alerts();

  net::asio::io_context io_{1};
  adb_server_address adb_;
  core::device_alert_settings alert_settings_;
  core::alerting_config alerting_;
  obs::registry& metrics_;
  core::alert_evaluator alerts_;
  gateway::alert_notifier notifier_;
  std::optional<net::asio::steady_timer> alert_timer_;
  bool stopping_ = false;
  device_keeper keeper_;
  std::optional<adb_proxy> proxy_;
  std::optional<std::uint16_t> proxy_port_;
  std::thread thread_;
};

}  // namespace nines::devices
