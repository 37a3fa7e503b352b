#include "app/devices_command.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>
#include <cstdlib>
#include <iostream>
#include <random>
#include <thread>

#include "app/proxy_command.hpp"
#include "core/config/devices_config.hpp"
#include "devices/device_sidecar.hpp"
#include "devices/devices_admin.hpp"
#include "obs/metrics.hpp"
#include "net/server_group.hpp"
#include "tools/http_client.hpp"

namespace nines::app {

namespace asio = net::asio;

CLI::App* add_devices_command(CLI::App& app, devices_options& o) {
  auto* cmd = app.add_subcommand(
      "devices", "keep every phone's ADB link alive and measured (the adb server's devices)");
  cmd->add_option("--config", o.config_path,
                  "TOML config file ([devices], [admin]; docs/config.md)");
  cmd->add_option("--adb-server", o.adb_server,
                  "IP:port of the adb server (default: ANDROID_ADB_SERVER_SOCKET, then "
                  "ANDROID_ADB_SERVER_PORT, then 127.0.0.1:5037); overrides the config");
  cmd->add_option("--adb-port", o.adb_port, "the adb server's port on 127.0.0.1 (adb -P)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--admin-listen", o.admin_listen,
                  "host:port of the admin listener (/devices, /metrics; default 127.0.0.1:9903); "
                  "overrides the config");
  cmd->add_option("--network", o.network,
                  "a phone's host:port to keep connected (repeatable), added to the config's");
  cmd->add_option("--adb-proxy", o.adb_proxy,
                  "listen here (loopback) as an adb server that holds a command for a phone that "
                  "is away until it is back; agents set ANDROID_ADB_SERVER_PORT to its port");
  cmd->add_option("--hold-ms", o.hold_ms, "how long the ADB proxy holds a command (default 10000)")
      ->check(CLI::Range(0, 600000));
  cmd->add_flag("--check", o.check_only, "validate the configuration and exit");
  o.status = cmd->add_subcommand("status", "print a device keeper's GET /devices as a table");
  o.status->add_option("url", o.status_url,
                       "the keeper's admin URL (default http://127.0.0.1:9903)");
  o.status->add_flag("--json", o.status_json, "print the JSON as it is");
  return cmd;
}

namespace {

int run_status(const devices_options& o) {
  const auto r = tools::http_call_url(o.status_url, "GET", "/devices");
  if (r.status != 200) {
    std::cerr << "nines devices status: " << o.status_url << ": "
              << (r.status == 0 ? r.error : "HTTP " + std::to_string(r.status)) << "\n";
    return 1;
  }
  if (o.status_json) {
    std::cout << r.body << "\n";
    return 0;
  }
  boost::json::error_code ec;
  const auto doc = boost::json::parse(r.body, ec);
  const auto* root = ec ? nullptr : doc.if_object();
  if (root == nullptr || !root->contains("devices") || !root->contains("fleet")) {
    std::cerr << "nines devices status: not a device keeper's answer\n";
    return 1;
  }
  const auto& fleet = root->at("fleet").as_object();
  const auto& adb = root->at("adb").as_object();
  const auto& rates = fleet.at("online_rate").as_object();
  std::cout << fmt::format(
      "adb server: {}{}\n", adb.at("up").as_bool() ? "up" : "DOWN",
      adb.at("up").as_bool() ? "" : " (" + std::string(adb.at("problem").as_string()) + ")");
  std::cout << fmt::format(
      "fleet: {} devices, online {:.4f}% (1h) {:.4f}% (24h) {:.4f}% (30d)\n\n",
      fleet.at("devices").to_number<std::uint64_t>(), rates.at("1h").to_number<double>() * 100,
      rates.at("24h").to_number<double>() * 100, rates.at("30d").to_number<double>() * 100);
  std::cout << fmt::format("{:<24} {:<13} {:>8} {:>6} {:>8} {:>9} {:>10}  {}\n", "SERIAL", "STATE",
                           "FOR", "SCORE", "RTT ms", "ONLINE 1h", "RECONNECTS", "LAST PROBLEM");
  for (const auto& v : root->at("devices").as_array()) {
    const auto& d = v.as_object();
    std::cout << fmt::format("{:<24} {:<13} {:>7.1f}s {:>6.2f} {:>8.1f} {:>8.3f}% {:>10}  {}\n",
                             std::string(d.at("serial").as_string()),
                             std::string(d.at("state").as_string()),
                             d.at("state_for_s").to_number<double>(),
                             d.at("score").to_number<double>(), d.at("rtt_ms").to_number<double>(),
                             d.at("online_rate").as_object().at("1h").to_number<double>() * 100,
                             d.at("reconnects").to_number<std::uint64_t>(),
                             std::string(d.at("last_problem").as_string()));
  }
  return 0;
}

// Where the adb server is: the flags, then the file, adb's own environment variables, its default.
std::optional<devices::adb_server_address> adb_server_of(const devices_options& o,
                                                         const core::devices_settings& d,
                                                         std::string& problem) {
  if (!o.adb_server.empty()) {
    const auto a = core::parse_listen_address(o.adb_server);
    if (!a || a->port == 0 || !core::is_ip_literal(a->host)) {
      problem = fmt::format("--adb-server must be IP:port, not \"{}\"", o.adb_server);
      return std::nullopt;
    }
    return devices::adb_server_address{a->host, a->port};
  }
  if (o.adb_port != 0) {
    return devices::adb_server_address{"127.0.0.1", static_cast<std::uint16_t>(o.adb_port)};
  }
  return devices::resolve_adb_server(d.adb_server, problem);
}

}  // namespace

int run_devices_command(devices_options& o) {
  if (*o.status) {
    return run_status(o);
  }
  core::devices_config_result parsed;
  std::string source = "(flags)";
  if (!o.config_path.empty()) {
    std::string text;
    if (!read_config_file(o.config_path, text)) {
      return exit_bad_config;
    }
    source = o.config_path;
    parsed = core::parse_devices_config(text, source);
  }
  auto& cfg = parsed.config;
  auto& problems = parsed.problems;
  if (!o.admin_listen.empty()) {
    if (auto a = core::parse_listen_address(o.admin_listen)) {
      cfg.admin.listen = *a;
    } else {
      problems.push_back({"--admin-listen", 0, 0, "must be host:port"});
    }
  }
  for (const auto& address : o.network) {
    if (!core::parse_network_serial(address)) {
      problems.push_back({"--network", 0, 0, "\"" + address + "\" is not a phone's host:port"});
    } else if (std::find(cfg.devices.network.begin(), cfg.devices.network.end(), address) ==
               cfg.devices.network.end()) {
      cfg.devices.network.push_back(address);
    }
  }
  if (!o.adb_proxy.empty()) {
    const auto a = core::parse_listen_address(o.adb_proxy);
    if (!a || !core::is_ip_literal(a->host) || !core::is_loopback(*a)) {
      problems.push_back({"--adb-proxy", 0, 0,
                          "must be a loopback IP:port (the ADB protocol has no authentication)"});
    } else {
      cfg.devices.adb_proxy = o.adb_proxy;
    }
  }
  if (o.hold_ms >= 0) {
    cfg.devices.hold = std::chrono::milliseconds(o.hold_ms);
  }
  core::validate_devices(cfg, problems);
  std::string adb_problem;
  const auto adb = adb_server_of(o, cfg.devices, adb_problem);
  if (!adb) {
    problems.push_back({"adb server", 0, 0, adb_problem});
  }
  if (!problems.empty()) {
    return print_problems(source, problems);
  }
  if (o.check_only) {
    std::cout << "nines devices: configuration is valid\n";
    return 0;
  }

  net::server_limits admin_limits;
  admin_limits.max_connections = 64;
  net::server_group admin(cfg.admin.listen.host, cfg.admin.listen.port, 1, admin_limits);
  const auto admin_port = admin.bind();
  // The alerts' series and the notifier's counters (written by the keeper's thread only).
  obs::registry alert_metrics(1);
  devices::device_sidecar sidecar(cfg.devices, *adb, std::random_device{}(), cfg.alerting,
                                  alert_metrics, 0,
                                  fmt::format("http://{}:{}", cfg.admin.listen.host, admin_port));
  devices::admin_options admin_opts;
  if (!cfg.admin.key_hash.empty()) {
    admin_opts.admin_key = core::parse_secret_digest(cfg.admin.key_hash);
  }
  admin_opts.per_device_metrics = cfg.devices.per_device_metrics;
  admin_opts.more_metrics = &alert_metrics;
  const auto& keeper = sidecar.keeper();
  admin.start(0, [&keeper, admin_opts](net::request& req, net::downstream& client) {
    return devices::handle_devices_admin(req, client, keeper, admin_opts);
  });
  std::thread admin_thread([&admin] { admin.run(); });

  // Signals on a thread of their own: the first stops the keeper (probes and connects under way
  // end at their deadlines, a few seconds at most), a second one stops it at once.
  asio::io_context signal_io(1);
  asio::signal_set signals(signal_io, SIGTERM, SIGINT);
  bool stopping = false;
  std::function<void(const net::error_code&, int)> on_signal = [&](const net::error_code& ec,
                                                                   int signo) {
    if (ec) {
      return;
    }
    if (stopping) {
      spdlog::info("signal {}: stopping now", signo);
      sidecar.stop_now();
      return;
    }
    stopping = true;
    spdlog::info("signal {}: stopping", signo);
    sidecar.stop();
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  std::thread signal_thread([&signal_io] { signal_io.run(); });

  if (const auto port = sidecar.proxy_port()) {
    spdlog::info("nines devices adb proxy listening on {}:{} (holding commands up to {} ms)",
                 cfg.devices.adb_proxy.substr(0, cfg.devices.adb_proxy.rfind(':')), *port,
                 cfg.devices.hold.count());
  }
  spdlog::info("nines admin listening on http://{}:{}{}", cfg.admin.listen.host, admin_port,
               admin_opts.admin_key ? " (admin key required)" : "");
  spdlog::info("nines devices keeping the adb server at {}:{} ({} configured addresses)", adb->host,
               adb->port, cfg.devices.network.size());
  sidecar.run();
  signal_io.stop();
  signal_thread.join();
  admin.stop();
  admin_thread.join();
  return 0;
}

}  // namespace nines::app
