#include "devices/device_sidecar.hpp"

#include <fmt/format.h>

#include <cstdlib>

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
                               std::uint64_t seed)
    : adb_(adb), keeper_(io_, keeper_settings_of(settings, adb), seed) {
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
  io_.run();
}

void device_sidecar::start() {
  thread_ = std::thread([this] { run(); });
}

void device_sidecar::stop() {
  keeper_.stop();
  if (proxy_) {
    proxy_->stop();
  }
}

void device_sidecar::stop_now() {
  io_.stop();
}

}  // namespace nines::devices
