// /metrics as Prometheus reads it: the exposition passes `promtool check metrics`, holds every
// family the operators' rules and dashboards need, each documented in docs/metrics.md; and a real
// Prometheus server (Debian's package) scrapes a running gateway and evaluates the shipped rules
// (deploy/prometheus/nines-rules.yml) over its metrics.

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

// A fresh directory under /tmp, removed with everything in it at the end of the test.
struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& name)
      : path(fs::temp_directory_path() /
             ("nines-" + name + "-" + std::to_string(::getpid()) + "-" +
              std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()))) {
    fs::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path operator/(const std::string& name) const { return path / name; }
};

// The metric families of an exposition (from its # TYPE lines), with their types.
std::map<std::string, std::string> families(const std::string& exposition) {
  std::map<std::string, std::string> out;
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      out[name] = type;
    }
  }
  return out;
}

// A gateway that has seen the kinds of traffic that create series: streams broken half-way and
// resumed on the other upstream, plain answers, bad input.
struct busy_gateway {
  server breaking = start_mock({"--faults", "break_rate=1"});
  server healthy = start_mock();
  server gw = start_gateway(
      "[health]\ninterval_ms = 200\njitter_ms = 20\n"
      "[[upstreams]]\nname = \"breaking\"\nurl = \"" +
      breaking.url() +
      "/v1\"\npriority = 0\n"
      "[[upstreams]]\nname = \"healthy\"\nurl = \"" +
      healthy.url() + "/v1\"\npriority = 1\n");
  busy_gateway() {
    for (int i = 0; i < 3; ++i) {
      auto r = http_call(gw.port, "POST", "/v1/chat/completions",
                         chat_body("resume " + std::to_string(i), true));
      EXPECT_EQ(r.status, 200U);
      EXPECT_EQ(stream_text(sse_events(r.body)),
                expected_answer(chat_body("resume " + std::to_string(i), false), true));
    }
    EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("plain", false)).status,
              200U);
    EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", "{not json").status, 400U);
    // Every upstream probed at least once, so its probe gauges have values.
    EXPECT_TRUE(eventually([&] {
      return metric_value(gw.admin_port,
                          R"(nines_upstream_probes_total{upstream="breaking",result="ok"})") > 0 &&
             metric_value(gw.admin_port,
                          R"(nines_upstream_probes_total{upstream="healthy",result="ok"})") > 0;
    }));
  }
};

TEST(gateway_metrics, exposition_passes_promtool_and_holds_what_operators_need) {
  busy_gateway b;
  const auto exposition = http_call(b.gw.admin_port, "GET", "/metrics").body;
  const temp_dir dir("metrics");
  std::ofstream(dir / "metrics.txt") << exposition;
  process promtool(
      {"/bin/sh", "-c", "exec promtool check metrics < " + (dir / "metrics.txt").string()});
  const auto code = promtool.wait_exit();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << promtool.output();
  EXPECT_EQ(promtool.output(), "");  // not even a lint warning

  const auto found = families(exposition);
  const std::map<std::string, std::string> needed{
      {"nines_requests_total", "counter"},
      {"nines_request_duration_seconds", "histogram"},
      {"nines_time_to_first_byte_seconds", "histogram"},
      {"nines_inter_token_seconds", "histogram"},
      {"nines_upstream_attempts_total", "counter"},
      {"nines_retries_total", "counter"},
      {"nines_failovers_total", "counter"},
      {"nines_hedges_total", "counter"},
      {"nines_stream_resumes_total", "counter"},
      {"nines_stream_resume_gap_seconds", "histogram"},
      {"nines_upstream_ejections_total", "counter"},
      {"nines_upstream_state", "gauge"},
      {"nines_upstream_up", "gauge"},
      {"nines_upstream_connections", "gauge"},
      {"nines_upstream_pending_requests", "gauge"},
      {"nines_upstream_in_flight", "gauge"},
      {"nines_upstream_probe_rtt_seconds", "histogram"},
      {"nines_upstream_probe_loss_ratio", "gauge"},
      {"nines_upstream_jitter_seconds", "gauge"},
      {"nines_upstream_health_score", "gauge"},
      {"nines_escaped_exceptions_total", "counter"},
      {"nines_build_info", "gauge"},
  };
  for (const auto& [name, type] : needed) {
    ASSERT_TRUE(found.contains(name)) << name << " is missing";
    EXPECT_EQ(found.at(name), type) << name;
  }
  // Requests by route, status, outcome and the upstream that served them.
  // The resumed streams count for the upstream that finished them; the plain answer (no stream
  // to break) came from the first tier.
  EXPECT_EQ(
      metric_value(
          b.gw.admin_port,
          R"(nines_requests_total{route="chat",status="200",outcome="ok",upstream="healthy"})"),
      3U);
  EXPECT_EQ(
      metric_value(
          b.gw.admin_port,
          R"(nines_requests_total{route="chat",status="200",outcome="ok",upstream="breaking"})"),
      1U);
  EXPECT_EQ(
      metric_value(
          b.gw.admin_port,
          R"(nines_requests_total{route="chat",status="400",outcome="rejected",upstream="none"})"),
      1U);
  EXPECT_EQ(
      metric_value(b.gw.admin_port,
                   R"(nines_stream_resumes_total{cause="reset",from="breaking",to="healthy"})") +
          metric_value(
              b.gw.admin_port,
              R"(nines_stream_resumes_total{cause="closed",from="breaking",to="healthy"})"),
      3U);
  EXPECT_GT(metric_value(b.gw.admin_port, R"(nines_inter_token_seconds_count{route="chat"})"), 0U);
  EXPECT_EQ(metric_value(b.gw.admin_port, R"(nines_build_info{version=")" NINES_VERSION R"("})"),
            1U);

  // Every family is documented, with its type, in docs/metrics.md.
  const auto docs = read_file((fs::path(NINES_SOURCE_DIR) / "docs" / "metrics.md").string());
  for (const auto& [name, type] : found) {
    EXPECT_NE(docs.find("| `" + name + "` | " + type + " |"), std::string::npos)
        << name << " (" << type << ") is not in docs/metrics.md";
  }
}

std::string url_encode(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

json::value get_json(unsigned short port, const std::string& target) {
  const auto r = http_call(port, "GET", target);
  if (r.status != 200) {
    return nullptr;
  }
  return json::parse(r.body);
}

TEST(gateway_metrics, prometheus_scrapes_the_gateway_and_evaluates_the_shipped_rules) {
  auto healthy = start_mock();
  auto refusing = start_mock({"--refuse"});
  auto gw = start_gateway("[health]\ninterval_ms = 200\njitter_ms = 20\n" +
                          upstreams_toml({healthy.url(), refusing.url()}));
  const temp_dir dir("prometheus");
  const auto rules = fs::path(NINES_SOURCE_DIR) / "deploy" / "prometheus" / "nines-rules.yml";
  // How many rules the file ships (an alert or a recording rule per "- alert:" / "- record:").
  std::size_t shipped = 0;
  {
    std::ifstream in(rules);
    static const std::regex rule_line(R"(^\s*- (alert|record):)");
    for (std::string line; std::getline(in, line);) {
      shipped += std::regex_search(line, rule_line) ? 1 : 0;
    }
  }
  ASSERT_GT(shipped, 10U);
  std::ofstream(dir / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "rule_files:\n  - " << rules.string() << "\n"
      << "scrape_configs:\n  - job_name: nines\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << gw.admin_port << "']\n";
  process prometheus({"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
                      "--storage.tsdb.path=" + (dir / "data").string(),
                      "--web.listen-address=127.0.0.1:0"});
  const auto listening = prometheus.wait_for_output("msg=\"Listening on\"");
  ASSERT_TRUE(listening) << prometheus.output();
  const std::smatch m = [&] {
    std::smatch out;
    static const std::regex address(R"(address=127\.0\.0\.1:(\d+))");
    std::regex_search(*listening, out, address);
    return out;
  }();
  ASSERT_FALSE(m.empty()) << *listening;
  const auto port = static_cast<unsigned short>(std::stoi(m[1].str()));
  ASSERT_TRUE(prometheus.wait_for_output("Server is ready to receive web requests"));

  // Scraped: the target is up and the gateway's series are in Prometheus.
  ASSERT_TRUE(eventually([&] {
    const auto v = get_json(port, "/api/v1/targets");
    if (!v.is_object()) {
      return false;
    }
    const auto& targets = v.at("data").at("activeTargets").as_array();
    return targets.size() == 1 && targets[0].at("health").as_string() == "up";
  })) << prometheus.output();

  // Every shipped rule evaluates without error.
  ASSERT_TRUE(eventually([&] {
    const auto v = get_json(port, "/api/v1/rules");
    if (!v.is_object()) {
      return false;
    }
    std::size_t evaluated = 0;
    for (const auto& group : v.at("data").at("groups").as_array()) {
      for (const auto& rule : group.at("rules").as_array()) {
        if (rule.at("health").as_string() != "ok") {
          return false;
        }
        ++evaluated;
      }
    }
    return evaluated == shipped;  // every rule of nines-rules.yml
  })) << json::serialize(get_json(port, "/api/v1/rules"));

  // The SLI over real metrics: requests counted, none failed. Requests keep coming while we look,
  // so that successive scrapes see the counters grow.
  int sent = 0;
  ASSERT_TRUE(eventually([&] {
    EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions",
                        chat_body("p" + std::to_string(++sent), false))
                  .status,
              200U);
    const auto v = get_json(port, "/api/v1/query?query=nines:sli_error_ratio:rate5m");
    if (!v.is_object()) {
      return false;
    }
    const auto& result = v.at("data").at("result").as_array();
    return result.size() == 1 && result[0].at("value").as_array()[1].as_string() == "0";
  })) << json::serialize(get_json(port, "/api/v1/query?query=nines:sli_error_ratio:rate5m"));

  // Every query of the Grafana dashboard runs against these metrics (with Grafana's variables
  // given values), and the availability panel shows what the gateway did: 100%.
  const auto dashboard = json::parse(read_file(
      (fs::path(NINES_SOURCE_DIR) / "deploy" / "grafana" / "nines-dashboard.json").string()));
  std::size_t queries = 0;
  for (const auto& panel : dashboard.at("panels").as_array()) {
    for (const auto& target : panel.at("targets").as_array()) {
      auto expr = std::string(target.at("expr").as_string());
      expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval)"), "1m");
      expr = std::regex_replace(expr, std::regex(R"(\$job)"), ".*");
      const auto v = get_json(port, "/api/v1/query?query=" + url_encode(expr));
      ASSERT_TRUE(v.is_object()) << panel.at("title") << ": " << expr;
      EXPECT_EQ(v.at("status").as_string(), "success") << expr;
      ++queries;
      if (panel.at("title").as_string() == "Availability, 5 min") {
        const auto& result = v.at("data").at("result").as_array();
        ASSERT_EQ(result.size(), 1U) << expr;
        EXPECT_EQ(result[0].at("value").as_array()[1].as_string(), "1");
      }
    }
  }
  EXPECT_GE(queries, 20U);

  // The refusing upstream is down: its alert is pending (it fires after a minute).
  ASSERT_TRUE(eventually([&] {
    const auto v = get_json(port, "/api/v1/alerts");
    if (!v.is_object()) {
      return false;
    }
    for (const auto& alert : v.at("data").at("alerts").as_array()) {
      const auto& labels = alert.at("labels").as_object();
      if (labels.at("alertname").as_string() == "NinesUpstreamDown" &&
          labels.at("upstream").as_string() == "u1" && alert.at("state").as_string() == "pending") {
        return true;
      }
    }
    return false;
  })) << json::serialize(get_json(port, "/api/v1/alerts"));
  // ...and only that one: the healthy upstream and the SLO are quiet.
  const auto alerts = get_json(port, "/api/v1/alerts").at("data").at("alerts").as_array();
  EXPECT_EQ(alerts.size(), 1U) << json::serialize(alerts);
}

}  // namespace
}  // namespace nines::test
