#include "tools/status_cli.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <iostream>

#include "tools/http_client.hpp"

namespace nines::tools {
namespace {

namespace json = boost::json;

double num(const json::value* v) {
  if (v == nullptr) {
    return 0;
  }
  json::error_code ec;
  const double d = v->to_number<double>(ec);
  return ec ? 0 : d;
}

// A ratio as a percentage with enough digits to tell 99.9% from 99.99%; "-" when absent.
std::string percent(const json::value* v) {
  if (v == nullptr || !v->is_number()) {
    return "-";
  }
  const double p = 100 * num(v);
  return fmt::format("{:.{}f}%", p, p >= 99.9 ? 3 : p >= 99 ? 2 : 1);
}

std::string text(const json::value* v) {
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

int run_status(const std::string& url, bool as_json) {
  const auto r = http_call_url(url, "GET", "/status");
  if (r.status == 0) {
    std::cerr << "nines status: " << r.error << "\n";
    return r.error.starts_with("the URL") ? 2 : 1;
  }
  if (r.status != 200) {
    std::cerr << "nines status: " << url << "/status answered " << r.status << "\n";
    return 1;
  }
  json::error_code ec;
  const auto v = json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    std::cerr << "nines status: the answer is not JSON\n";
    return 1;
  }
  if (as_json) {
    std::cout << r.body << "\n";
    return v.at("ready").as_bool() ? 0 : 1;
  }
  const auto& o = v.get_object();
  const auto& tier = o.at("tier").as_object();
  std::cout << fmt::format(
      "nines {} up {:.0f} s, config version {}, {} workers, {}; tier in use: priority {} ({} "
      "switches)\n",
      text(o.if_contains("version")), num(o.if_contains("uptime_s")),
      num(o.if_contains("config_version")), num(o.if_contains("workers")),
      o.at("ready").as_bool() ? "ready" : "NOT READY",
      tier.at("active_priority").is_null() ? std::string("none")
                                           : fmt::format("{}", num(&tier.at("active_priority"))),
      num(tier.if_contains("switches")));
  if (const auto* sla = o.if_contains("sla"); sla != nullptr && sla->is_object()) {
    const auto& windows = sla->at("windows").as_object();
    std::string line = "availability";
    for (const char* w : {"5m", "1h", "24h"}) {
      const auto& win = windows.at(w).as_object();
      line += fmt::format(" {} {} ({:.0f} requests, {:.0f} failed);", w,
                          percent(win.if_contains("availability")), num(win.if_contains("good")) +
                          num(win.if_contains("bad")), num(win.if_contains("bad")));
    }
    std::cout << line << fmt::format(" error budget left {} of {}\n",
                                     percent(sla->as_object().if_contains("error_budget_left")),
                                     percent(sla->as_object().if_contains("objective")));
    for (const auto& a : sla->at("alerts").as_array()) {
      std::cout << "ALERT " << text(a.as_object().if_contains("name")) << ": "
                << text(a.as_object().if_contains("summary")) << "\n";
    }
  }
  if (const auto* cache = o.if_contains("cache"); cache != nullptr && cache->is_object()) {
    const auto& c = cache->as_object();
    static const json::object none;
    const auto* requests = c.if_contains("requests");
    const auto& r = requests != nullptr && requests->is_object() ? requests->get_object() : none;
    std::cout << fmt::format(
        "cache: {:.0f} hits, {:.0f} shared in flight, {:.0f} misses, {:.0f} bypassed; {:.0f} "
        "answers, {:.1f} of {:.0f} MB\n",
        num(r.if_contains("hit")), num(r.if_contains("shared")), num(r.if_contains("miss")),
        num(r.if_contains("bypass")), num(c.if_contains("entries")),
        num(c.if_contains("bytes")) / 1e6, num(c.if_contains("max_bytes")) / 1e6);
  }
  // An edge's /status lists its uplinks, with the fields of a gateway's upstreams.
  const bool edge = o.contains("uplinks");
  const auto& links = o.at(edge ? "uplinks" : "upstreams").as_object();
  std::size_t width = 8;
  for (const auto& [name, value] : links) {
    width = std::max(width, name.size());
  }
  std::cout << fmt::format(
      "{:<{}} {:>4} {:<10} {:>5} {:>8} {:>8} {:>6} {:>9} {:>8} {:>7} {:<9} {:>9} {:>9} {:>7}\n",
      edge ? "UPLINK" : "UPSTREAM", width, "TIER", "STATE", "SCORE", "RTT ms", "P99 ms", "LOSS", "JITTER ms",
      "INFLIGHT", "EJECTED", "BREAKER", "POOL o/i", "AVAIL 5m", "ERR 1m");
  for (const auto& [name, value] : links) {
    const auto& u = value.as_object();
    const auto& p = u.at("probe").as_object();
    const auto& pool = u.at("pool").as_object();
    const auto* sla = u.if_contains("sla");
    const bool has_sla = sla != nullptr && sla->is_object();
    std::cout << fmt::format(
        "{:<{}} {:>3}{} {:<10} {:>5.2f} {:>8.2f} {:>8.2f} {:>5.1f}% {:>9.2f} {:>8} {:>7} {:<9} "
        "{:>4}/{:<4} {:>9} {:>7}\n",
        std::string_view(name), width, num(u.if_contains("priority")),
        u.at("tier_in_use").as_bool() ? "*" : " ", text(u.if_contains("state")),
        num(u.if_contains("score")), num(p.if_contains("rtt_ewma_ms")),
        num(p.if_contains("rtt_p99_ms")), 100 * num(p.if_contains("loss")),
        num(p.if_contains("jitter_ms")), num(u.if_contains("in_flight")),
        num(u.if_contains("ejections")), text(u.if_contains("breaker")),
        num(pool.if_contains("open")), num(pool.if_contains("idle")),
        percent(has_sla ? sla->as_object().if_contains("availability_5m") : nullptr),
        percent(has_sla ? sla->as_object().if_contains("error_rate_1m") : nullptr));
  }
  return o.at("ready").as_bool() ? 0 : 1;
}

}  // namespace nines::tools
