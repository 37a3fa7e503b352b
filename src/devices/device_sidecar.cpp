#include "devices/device_sidecar.hpp"

#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <cstdlib>

#include "net/spawn.hpp"

namespace nines::devices {

std::optional<adb_server_address> resolve_adb_server(const std::string& configured,
                                                     std::string& problem) {
  if (!configured.empty()) {
    const auto a = core::parse_listen_address(configured);
    if (!a || a->port == 0 || !core::is_ip_literal(a->host)) {
      problem = fmt::format("devices.adb_server must be IP:port, not \"{}\"", configured);
      return std::nullopt;
    }
    return adb_server_address{a->host, a->port};
  }
  if (const char* s = std::getenv("ANDROID_ADB_SERVER_SOCKET"); s != nullptr && *s != '\0') {
    auto a = parse_adb_server_socket(s);
    if (!a) {
      problem = fmt::format("ANDROID_ADB_SERVER_SOCKET \"{}\" is not tcp:PORT or tcp:HOST:PORT",
                            std::string_view(s).substr(0, 100));
    }
    return a;
  }
  if (const char* s = std::getenv("ANDROID_ADB_SERVER_PORT"); s != nullptr && *s != '\0') {
    auto a = parse_adb_server_socket(std::string("tcp:") + s);
    if (!a) {
      problem = fmt::format("ANDROID_ADB_SERVER_PORT \"{}\" is not a port",
                            std::string_view(s).substr(0, 100));
    }
    return a;
  }
  return adb_server_address{};
}

namespace {

keeper_settings keeper_settings_of(const core::devices_settings& d, adb_server_address adb) {
  keeper_settings k;
  k.adb = std::move(adb);
  k.policy = d.policy;
  k.network = d.network;
  k.max_devices = d.max_devices;
  return k;
}

}  // namespace

device_sidecar::device_sidecar(const core::devices_settings& settings, adb_server_address adb,
                               std::uint64_t seed, const core::alerting_config& alerting,
                               obs::registry& metrics, unsigned shard, std::string external_url)
    : adb_(adb),
      alert_settings_(settings.alerts),
      alerting_(alerting),
      metrics_(metrics),
      alerts_(alerting.rules),
      notifier_(io_, alerting, metrics, shard, std::move(external_url)),
      keeper_(io_, keeper_settings_of(settings, adb), seed) {
  if (!settings.adb_proxy.empty()) {
    const auto a = *core::parse_listen_address(settings.adb_proxy);
    proxy_settings ps;
    ps.host = a.host;
    ps.port = a.port;
    ps.hold = settings.hold;
    proxy_.emplace(io_, keeper_, adb_, ps);
    proxy_port_ = proxy_->bind();
  }
}

device_sidecar::~device_sidecar() {
  if (thread_.joinable()) {
    stop();
    thread_.join();
  }
}

void device_sidecar::run() {
  keeper_.start();
  if (proxy_) {
    proxy_->start();
  }
  net::spawn(io_.get_executor(), watch_alerts(), "the device keeper's alerts");
  io_.run();
}

net::awaitable<void> device_sidecar::watch_alerts() {
  alert_timer_.emplace(io_);
  while (!stopping_) {
    alert_timer_->expires_after(alerting_.evaluation_interval);
    co_await alert_timer_->async_wait(net::use_nothrow);
    if (stopping_) {
      break;
    }
    const auto snap = keeper_.snapshot();
    std::vector<core::device_condition> conditions;
    conditions.reserve(snap->devices.size());
    for (const auto& d : snap->devices) {
      conditions.push_back({d.serial, d.state});
    }
    const auto now = std::chrono::steady_clock::now();
    const auto changes = core::evaluate_device_alerts(alerts_, alert_settings_, conditions,
                                                      snap->fleet_online_1h, now);
    for (const auto& a : changes) {
      obs::labels l{{"alertname", a.name}};
      for (const auto& [k, v] : a.labels) {
        if (k != "alertname") {
          l.emplace_back(k, v);
        }
      }
      metrics_.gauge_of("nines_alerts_firing", "1 while a built-in alert fires.", l)
          .set(a.firing ? 1 : 0);
      spdlog::warn("nines devices: {} {}: {}", a.firing ? "alert" : "resolved", a.name,
                   a.summary);
    }
    notifier_.changed(changes);
    notifier_.still_firing(alerts_.firing(), now);
  }
}

void device_sidecar::start() {
  thread_ = std::thread([this] { run(); });
}

void device_sidecar::stop() {
  net::asio::post(io_, [this] {
    stopping_ = true;
    if (alert_timer_) {
      alert_timer_->cancel();
    }
  });
  keeper_.stop();
  if (proxy_) {
    proxy_->stop();
  }
}

void device_sidecar::stop_now() {
  io_.stop();
}

}  // namespace nines::devices
