#include "devices/devices_admin.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <boost/url/pct_string_view.hpp>

#include "core/http/openai_error.hpp"
#include "core/json/json_text.hpp"
#include "gateway/admin.hpp"
#include "obs/dashboard.hpp"
#include "obs/metrics.hpp"

namespace nines::devices {

namespace json = boost::json;
namespace http = net::http;
using core::device_state;

namespace {

json::object view_of(const device_view& d) {
  json::object o;
  o["serial"] = d.serial;
  o["state"] = core::device_state_name(d.state);
  o["state_for_s"] = d.state_for_s;
  o["since_good_probe_s"] = d.since_good_probe_s;
  o["adb_state"] = d.adb_state;
  o["network"] = d.network;
  o["configured"] = d.configured;
  o["score"] = d.score;
  o["rtt_ms"] = d.rtt_ms;
  o["consecutive_misses"] = d.consecutive_misses;
  o["probes"] = d.probes;
  o["misses"] = d.misses;
  o["transitions"] = d.transitions;
  o["reconnects"] = d.reconnects;
  o["last_problem"] = d.last_problem;
  o["online_rate"] = {{"1h", d.online_1h}, {"24h", d.online_24h}, {"30d", d.online_30d}};
  return o;
}

}  // namespace

std::string device_json(const device_view& d) {
  return json::serialize(view_of(d));
}

std::string devices_json(const devices_snapshot& snap) {
  json::object o;
  o["adb"] = {{"up", snap.adb_up},
              {"problem", snap.adb_problem},
              {"list_lines_refused", snap.list_problems},
              {"devices_refused", snap.devices_refused}};
  json::object states;
  for (int i = 0; i < core::device_state_count; ++i) {
    states[core::device_state_name(static_cast<device_state>(i))] = snap.by_state[i];
  }
  o["fleet"] = {{"devices", snap.devices.size()},
                {"states", std::move(states)},
                {"online_rate",
                 {{"1h", snap.fleet_online_1h},
                  {"24h", snap.fleet_online_24h},
                  {"30d", snap.fleet_online_30d}}},
                {"probes", snap.probes},
                {"misses", snap.misses},
                {"reconnects", snap.reconnects}};
  const auto& px = snap.proxy;
  o["proxy"] = {{"running", px.running},
                {"connections", px.connections},
                {"refused", px.refused},
                {"held", px.held},
                {"held_served", px.held_served},
                {"held_expired", px.held_expired},
                {"replayed", px.replayed},
                {"unconfirmed_passed", px.unconfirmed_passed},
                {"preflight_missed", px.preflight_missed},
                {"held_abandoned", px.held_abandoned},
                {"sync_resumed", px.sync_resumed},
                {"sync_lost", px.sync_lost},
                {"sync_abandoned", px.sync_abandoned},
                {"upstream_failures", px.upstream_failures}};
  json::array devices;
  for (const auto& d : snap.devices) {
    devices.push_back(view_of(d));
  }
  o["devices"] = std::move(devices);
  return json::serialize(o);
}

std::string devices_metrics(const devices_snapshot& snap, bool per_device) {
  std::string out;
  auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto line = [&](std::string_view name, const obs::labels& l, double v) {
    out += fmt::format("{}{} {}\n", name, obs::render_labels(l), v);
  };
  family("nines_adb_server_up", "gauge", "1 while the keeper follows the adb server's device list");
  line("nines_adb_server_up", {}, snap.adb_up ? 1 : 0);
  family("nines_devices", "gauge", "Devices by state");
  for (int i = 0; i < core::device_state_count; ++i) {
    line("nines_devices",
         {{"state", std::string(core::device_state_name(static_cast<device_state>(i)))}},
         snap.by_state[i]);
  }
  family("nines_devices_online_ratio", "gauge",
         "Time-weighted share of the fleet's tracked time spent online, by window");
  line("nines_devices_online_ratio", {{"window", "1h"}}, snap.fleet_online_1h);
  line("nines_devices_online_ratio", {{"window", "24h"}}, snap.fleet_online_24h);
  line("nines_devices_online_ratio", {{"window", "30d"}}, snap.fleet_online_30d);
  family("nines_device_probes_total", "counter", "Probes sent to devices");
  line("nines_device_probes_total", {}, static_cast<double>(snap.probes));
  family("nines_device_probe_misses_total", "counter",
         "Probes that got no good answer in time (silent, hang, refused)");
  line("nines_device_probe_misses_total", {}, static_cast<double>(snap.misses));
  family("nines_device_reconnects_total", "counter",
         "Network devices brought back with host:connect");
  line("nines_device_reconnects_total", {}, static_cast<double>(snap.reconnects));
  family("nines_adb_list_lines_refused_total", "counter",
         "Lines of adb's device list refused as malformed, duplicated or over max_devices");
  line("nines_adb_list_lines_refused_total", {},
       static_cast<double>(snap.list_problems + snap.devices_refused));
  family("nines_adb_proxy_connections_total", "counter",
         "Agents' connections to the ADB proxy, by what became of them");
  line("nines_adb_proxy_connections_total", {{"result", "accepted"}},
       static_cast<double>(snap.proxy.connections));
  line("nines_adb_proxy_connections_total", {{"result", "refused"}},
       static_cast<double>(snap.proxy.refused));
  family("nines_adb_proxy_held_total", "counter",
         "Commands the ADB proxy held for a phone that was away, by how the hold ended");
  line("nines_adb_proxy_held_total", {{"result", "served"}},
       static_cast<double>(snap.proxy.held_served));
  line("nines_adb_proxy_held_total", {{"result", "expired"}},
       static_cast<double>(snap.proxy.held_expired));
  line("nines_adb_proxy_held_total", {{"result", "abandoned"}},
       static_cast<double>(snap.proxy.held_abandoned));
  family("nines_adb_proxy_replayed_total", "counter",
         "Repeatable commands the ADB proxy sent again: the phone's confirmation never came "
         "before its transport went away");
  line("nines_adb_proxy_replayed_total", {}, static_cast<double>(snap.proxy.replayed));
  family("nines_adb_proxy_unconfirmed_total", "counter",
         "Commands whose confirmation never came and that are not repeatable (a tap): adb's "
         "answer passed on to the agent, not sent again");
  line("nines_adb_proxy_unconfirmed_total", {}, static_cast<double>(snap.proxy.unconfirmed_passed));
  family("nines_adb_proxy_preflight_missed_total", "counter",
         "Checks before a command that must not run twice (a tap) that the phone did not answer: "
         "the command held, not sent");
  line("nines_adb_proxy_preflight_missed_total", {},
       static_cast<double>(snap.proxy.preflight_missed));
  family("nines_adb_proxy_sync_breaks_total", "counter",
         "Pulls through the ADB proxy whose stream broke half-way, by whether the proxy went on "
         "from the bytes the agent had (resumed) or ended the pull with a refusal (lost), or the agent left first (abandoned)");
  line("nines_adb_proxy_sync_breaks_total", {{"result", "resumed"}},
       static_cast<double>(snap.proxy.sync_resumed));
  line("nines_adb_proxy_sync_breaks_total", {{"result", "lost"}},
       static_cast<double>(snap.proxy.sync_lost));
  line("nines_adb_proxy_sync_breaks_total", {{"result", "abandoned"}},
       static_cast<double>(snap.proxy.sync_abandoned));
  family("nines_adb_proxy_upstream_failures_total", "counter",
         "Proxied requests the adb server could not be reached for");
  line("nines_adb_proxy_upstream_failures_total", {},
       static_cast<double>(snap.proxy.upstream_failures));
  if (!per_device) {
    return out;
  }
  family("nines_device_state", "gauge", "1 for each device's current state");
  for (const auto& d : snap.devices) {
    line("nines_device_state",
         {{"serial", d.serial}, {"state", std::string(core::device_state_name(d.state))}}, 1);
  }
  family("nines_device_health_score", "gauge", "A device's health score in [0, 1]");
  for (const auto& d : snap.devices) {
    line("nines_device_health_score", {{"serial", d.serial}}, d.score);
  }
  family("nines_device_probe_rtt_seconds", "gauge", "A device's probe round-trip time (EWMA)");
  for (const auto& d : snap.devices) {
    line("nines_device_probe_rtt_seconds", {{"serial", d.serial}}, d.rtt_ms / 1000.0);
  }
  family("nines_device_online_ratio", "gauge", "A device's time online over the last hour");
  for (const auto& d : snap.devices) {
    line("nines_device_online_ratio", {{"serial", d.serial}, {"window", "1h"}}, d.online_1h);
  }
  return out;
}

net::awaitable<void> handle_devices_admin(net::request& req, net::downstream& client,
                                          const device_keeper& keeper,
                                          const admin_options& options) {
  if (co_await gateway::refused_without_admin_key(req, client, options.admin_key)) {
    co_return;
  }
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  const auto snap = keeper.snapshot();
  constexpr std::string_view one = "/devices/";
  if (get && path == "/healthz") {
    std::string body = R"({"status":"ok"})";
    co_await gateway::send_body(client, http::status::ok, "application/json", std::move(body));
  } else if (get && path == "/devices") {
    std::string body = devices_json(*snap);
    co_await gateway::send_body(client, http::status::ok, "application/json", std::move(body));
  } else if (get && path == "/metrics") {
    std::string body = devices_metrics(*snap, options.per_device_metrics);
    if (options.more_metrics != nullptr) {
      body += options.more_metrics->exposition();
    }
    co_await gateway::send_body(client, http::status::ok,
                                "text/plain; version=0.0.4; charset=utf-8", std::move(body));
  } else if (get && path == "/dashboard") {
    // The gateway's page, told that only /devices is here.
    static const std::string page = [] {
      std::string p(obs::dashboard_page());
      const std::string_view from = R"(<body data-role="gateway">)";
      if (const auto at = p.find(from); at != std::string::npos) {
        p.replace(at, from.size(), R"(<body data-role="devices">)");
      }
      return p;
    }();
    co_await gateway::send_dashboard(client, page);
  } else if (get && path.substr(0, one.size()) == one) {
    // The serial as one path segment, percent-encoded or not ("192.168.1.20%3A5555").
    const auto segment = path.substr(one.size());
    const auto encoded = boost::urls::make_pct_string_view(segment);
    std::string serial = encoded ? encoded->decode() : std::string();
    const device_view* found = nullptr;
    for (const auto& d : snap->devices) {
      if (encoded && d.serial == serial) {
        found = &d;
      }
    }
    if (found != nullptr) {
      std::string body = device_json(*found);
      co_await gateway::send_body(client, http::status::ok, "application/json", std::move(body));
    } else {
      std::string body = core::openai_error_body(
          "not_found",
          encoded ? "no device with that serial" : "the serial is not a valid path segment",
          "device_not_found");
      co_await gateway::send_body(client, http::status::not_found, "application/json",
                                  std::move(body));
    }
  } else {
    std::string body = core::openai_error_body(
        "not_found",
        fmt::format("no devices endpoint {}: /devices, /devices/{{serial}}, /dashboard, /metrics, "
                    "/healthz",
                    core::utf8_prefix(path, 200)),
        "route_not_found");
    co_await gateway::send_body(client, http::status::not_found, "application/json",
                                std::move(body));
  }
}

}  // namespace nines::devices
