#include "tools/probe_cli.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>
#include <iostream>

#include "core/health/link_quality.hpp"
#include "net/asio.hpp"
#include "net/spawn.hpp"

namespace nines::tools {
namespace {

using namespace net;
namespace json = boost::json;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct target {
  std::string text;
  bool http = false;
  std::string host;
  std::uint16_t port = 0;
  std::string path = "/";
  core::link_quality quality{1000};
  std::string last_error;
};

std::optional<target> parse_target(const std::string& text, std::string& why) {
  target t;
  t.text = text;
  std::string spec = text;
  if (spec.rfind("tcp://", 0) == 0) {
    spec = spec.substr(6);
  } else if (spec.rfind("http://", 0) == 0) {
    auto url = boost::urls::parse_absolute_uri(spec);
    if (!url || !url->has_port()) {
      why = "an http target needs a port: http://host:port/path";
      return std::nullopt;
    }
    t.http = true;
    t.host = std::string(url->host_address());
    t.port = url->port_number();
    t.path = url->encoded_path().empty() ? "/" : std::string(url->encoded_path());
    return t;
  } else if (spec.find("://") != std::string::npos) {
    why = "targets are tcp://host:port, http://host:port/path or host:port";
    return std::nullopt;
  }
  const auto colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    why = "a target needs a port: host:port";
    return std::nullopt;
  }
  t.host = spec.substr(0, colon);
  try {
    const int port = std::stoi(spec.substr(colon + 1));
    if (port <= 0 || port > 65535) {
      throw std::out_of_range("port");
    }
    t.port = static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
    why = "the port must be a number from 1 to 65535";
    return std::nullopt;
  }
  return t;
}

// Probes one target `count` times; each probe connects anew for TCP, and reuses its connection
// for HTTP (as the gateway's health checks do).
awaitable<void> probe_target(target& t, const probe_options& o) {
  auto executor = co_await asio::this_coro::executor;
  std::optional<beast::tcp_stream> kept;
  beast::flat_buffer buffer;
  asio::steady_timer pause(executor);
  const auto request = fmt::format("GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: nines-probe/{}\r\n\r\n",
                                   t.path, t.host, t.port, NINES_VERSION);
  for (unsigned n = 0; n < o.count; ++n) {
    if (n > 0) {
      pause.expires_after(milliseconds(o.interval_ms));
      co_await pause.async_wait(use_nothrow);
    }
    const auto start = steady::now();
    std::string error;
    if (!kept) {
      kept.emplace(executor);
      kept->expires_after(milliseconds(o.timeout_ms));
      tcp::resolver resolver(executor);
      auto [rec, results] =
          co_await resolver.async_resolve(t.host, std::to_string(t.port), use_nothrow);
      error_code ec = rec;
      if (!ec) {
        auto [cec, ep] = co_await kept->async_connect(results, use_nothrow);
        ec = cec;
      }
      if (ec) {
        error = ec == beast::error::timeout ? "connect timed out" : "connect: " + ec.message();
        kept.reset();
      }
    }
    if (error.empty() && t.http) {
      kept->expires_after(milliseconds(o.timeout_ms));
      auto [wec, wn] = co_await asio::async_write(*kept, asio::buffer(request), use_nothrow);
      http::response_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      error_code ec = wec;
      if (!ec) {
        auto [rec, rn] = co_await http::async_read(*kept, buffer, parser, use_nothrow);
        ec = rec;
      }
      if (ec) {
        error = ec == beast::error::timeout ? "timed out" : ec.message();
        kept.reset();
        buffer.clear();
      } else if (parser.get().result_int() / 100 != 2) {
        error = fmt::format("status {}", parser.get().result_int());
      }
      if (kept && !parser.get().keep_alive()) {
        kept.reset();
      }
    }
    if (!t.http) {
      kept.reset();  // a TCP probe is one connect
    }
    if (error.empty()) {
      t.quality.record_success(steady::now() - start);
    } else {
      t.quality.record_failure();
      t.last_error = error;
    }
  }
}

}  // namespace

void add_probe_options(CLI::App& app, probe_options& o) {
  app.add_option("targets", o.targets, "tcp://host:port, http://host:port/path or host:port")
      ->required();
  app.add_option("--count", o.count, "probes per target")->check(CLI::Range(1, 100000));
  app.add_option("--interval-ms", o.interval_ms, "time between probes of a target");
  app.add_option("--timeout-ms", o.timeout_ms, "time a probe may take");
  app.add_option("--rtt-normal-ms", o.rtt_normal_ms, "RTT below this is normal");
  app.add_option("--rtt-alert-ms", o.rtt_alert_ms, "RTT above this is an alert");
  app.add_option("--loss-alert-percent", o.loss_alert_percent, "loss above this is an alert");
  app.add_option("--jitter-normal-ms", o.jitter_normal_ms, "jitter below this is normal");
  app.add_option("--jitter-alert-ms", o.jitter_alert_ms, "jitter above this is an alert");
  app.add_flag("--json", o.json, "print JSON instead of a table");
}

int run_probe(const probe_options& o) {
  std::vector<target> targets;
  for (const auto& text : o.targets) {
    std::string why;
    auto t = parse_target(text, why);
    if (!t) {
      std::cerr << "nines probe: " << text << ": " << why << "\n";
      return 2;
    }
    targets.push_back(std::move(*t));
  }
  asio::io_context ctx;
  for (auto& t : targets) {
    spawn(ctx.get_executor(), probe_target(t, o), "probe");
  }
  ctx.run();
  core::link_thresholds thresholds;
  thresholds.rtt_normal = milliseconds(o.rtt_normal_ms);
  thresholds.rtt_alert = milliseconds(o.rtt_alert_ms);
  thresholds.loss_alert = o.loss_alert_percent / 100;
  thresholds.jitter_normal = milliseconds(o.jitter_normal_ms);
  thresholds.jitter_alert = milliseconds(o.jitter_alert_ms);
  bool alert = false;
  json::array out;
  if (!o.json) {
    std::cout << fmt::format("{:<36} {:>6} {:>7} {:>9} {:>9} {:>9} {:>9}  {}\n", "target", "probes",
                             "loss", "rtt ms", "p99 ms", "min ms", "jitter ms", "rating");
  }
  for (const auto& t : targets) {
    const auto r = t.quality.report(thresholds);
    alert = alert || r.overall() == core::quality_level::alert;
    const auto rating = fmt::format("rtt {}, loss {}, jitter {}", core::to_string(r.rtt_level),
                                    core::to_string(r.loss_level), core::to_string(r.jitter_level));
    if (o.json) {
      out.push_back(json::object{{"target", t.text},
                                 {"probes", r.probes},
                                 {"failed", r.failed},
                                 {"loss", r.loss},
                                 {"rtt_ewma_ms", r.rtt_ewma_ms},
                                 {"rtt_p99_ms", r.rtt_p99_ms},
                                 {"rtt_min_ms", r.rtt_min_ms},
                                 {"jitter_ms", r.jitter_ms},
                                 {"level", core::to_string(r.overall())},
                                 {"last_error", t.last_error}});
      continue;
    }
    std::cout << fmt::format("{:<36} {:>6} {:>6.1f}% {:>9.2f} {:>9.2f} {:>9.2f} {:>9.2f}  {}{}\n",
                             t.text, r.probes, 100 * r.loss, r.rtt_ewma_ms, r.rtt_p99_ms,
                             r.rtt_min_ms, r.jitter_ms, rating,
                             t.last_error.empty() ? "" : " (last error: " + t.last_error + ")");
  }
  if (o.json) {
    std::cout << json::serialize(out) << "\n";
  }
  return alert ? 1 : 0;
}

}  // namespace nines::tools
