#include "core/config/config.hpp"
#include "config_problems.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(config, reads_a_full_file) {
  auto r = parse_config(R"(
[gateway]
listen = "127.0.0.1:9090"
workers = 2

[retry]
max_attempts = 4
retry_on_status = [503]

[timeouts]
connect_ms = 250

[[upstreams]]
name = "gpu-a"
url = "http://127.0.0.1:9001/v1"
priority = 0
weight = 3
api_key = "sk-a"

[[upstreams]]
name = "gpu-b"
url = "https://models.example:8443/openai/v1/"
priority = 1
)",
                        "test.toml");
  ASSERT_TRUE(r.problems.empty()) << format_problem("test.toml", r.problems.front());
  const auto& c = *r.value;
  EXPECT_EQ(c.gateway.listen.port, 9090);
  EXPECT_EQ(c.gateway.workers, 2U);
  EXPECT_EQ(c.retry.policy.max_attempts, 4U);
  EXPECT_EQ(c.retry.policy.retry_statuses, std::vector<unsigned>{503});
  EXPECT_EQ(c.timeouts.connect, std::chrono::milliseconds(250));
  EXPECT_EQ(c.timeouts.first_byte, timeout_settings{}.first_byte);  // default kept
  ASSERT_EQ(c.upstreams.size(), 2U);
  EXPECT_EQ(c.upstreams[0].host, "127.0.0.1");
  EXPECT_EQ(c.upstreams[0].port, 9001);
  EXPECT_EQ(c.upstreams[0].base_path, "/v1");
  EXPECT_EQ(c.upstreams[0].weight, 3U);
  EXPECT_EQ(c.upstreams[0].api_key, "sk-a");
  EXPECT_TRUE(c.upstreams[1].tls);
  EXPECT_EQ(c.upstreams[1].port, 8443);
  EXPECT_EQ(c.upstreams[1].base_path, "/openai/v1");
}

TEST(config, url_without_path_means_v1) {
  upstream_config u;
  u.url = "http://localhost:8000";
  EXPECT_EQ(resolve_upstream_url(u), "");
  EXPECT_EQ(u.base_path, "/v1");
  EXPECT_EQ(u.port, 8000);
  u.url = "https://api.example";
  EXPECT_EQ(resolve_upstream_url(u), "");
  EXPECT_EQ(u.port, 443);
}

TEST(config, how_a_continuation_carries_a_thought_or_a_responses_stream_is_per_upstream) {
  auto ok = parse_config(R"([[upstreams]]
url = "http://127.0.0.1:1"
reasoning_resume = "opened_think"
responses_resume = "none"
[[upstreams]]
url = "http://127.0.0.1:2"
reasoning_resume = "think_tags_newline"
[[upstreams]]
url = "http://127.0.0.1:3"
)",
                         "ok.toml");
  ASSERT_TRUE(ok.value);
  EXPECT_EQ(ok.value->upstreams[0].resume_reasoning, reasoning_resume::opened_think);
  EXPECT_FALSE(ok.value->upstreams[0].resume_responses);
  EXPECT_EQ(ok.value->upstreams[1].resume_reasoning, reasoning_resume::think_tags_newline);
  EXPECT_EQ(ok.value->upstreams[2].resume_reasoning, reasoning_resume::think_tags);
  EXPECT_TRUE(ok.value->upstreams[2].resume_responses);
  auto bad = parse_config(R"([[upstreams]]
url = "http://127.0.0.1:1"
reasoning_resume = "think"
responses_resume = true
)",
                          "bad.toml");
  EXPECT_FALSE(bad.value);
  ASSERT_EQ(bad.problems.size(), 2U);
  EXPECT_EQ(bad.problems[0].key, "upstreams[0].reasoning_resume");
  EXPECT_EQ(bad.problems[0].line, 3);
  EXPECT_EQ(bad.problems[1].key, "upstreams[0].responses_resume");
}

TEST(config, lists_every_problem_with_key_and_line) {
  auto r = parse_config(R"([gateway]
listen = "nonsense"
workers = -1
colour = "blue"

[retry]
max_attempts = "three"

[[upstreams]]
name = "a"
url = "ftp://x"

[[upstreams]]
name = "a"
url = "http://127.0.0.1:1/v1"
weight = 0
)",
                        "bad.toml");
  EXPECT_FALSE(r.value);
  auto has = [&](std::string_view key, int line) {
    for (const auto& p : r.problems) {
      if (p.key == key && p.line == line) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(has("gateway.listen", 2));
  EXPECT_TRUE(has("gateway.workers", 3));
  EXPECT_TRUE(has("gateway.colour", 4));
  EXPECT_TRUE(has("retry.max_attempts", 7));
  EXPECT_TRUE(has("upstreams[0].url", 11));
  EXPECT_TRUE(has("upstreams[1].weight", 16));
  EXPECT_TRUE(has("upstreams[1].name", 13));  // duplicate name, placed at its table
  EXPECT_EQ(r.problems.size(), 7U);
}

TEST(config, alerting_and_logs) {
  auto ok = parse_config(R"([gateway]
log_format = "json"
[alerting]
objective_percent = 99.9
webhooks = ["http://127.0.0.1:9/hook", "https://hooks.example/nines"]
upstream_down_for_ms = 500
ttft_for_ms = 1500
[[upstreams]]
url = "http://127.0.0.1:1/v1"
)",
                         "ok.toml");
  ASSERT_TRUE(ok.problems.empty()) << format_problem("ok.toml", ok.problems.front());
  const auto& a = ok.value->alerting;
  EXPECT_DOUBLE_EQ(a.rules.objective, 0.999);
  EXPECT_EQ(a.webhooks.size(), 2U);
  // Sub-second holds are kept as they are, not rounded to whole seconds.
  EXPECT_EQ(a.rules.upstream_down_for, std::chrono::milliseconds(500));
  EXPECT_EQ(a.rules.ttft_for, std::chrono::milliseconds(1500));
  EXPECT_EQ(ok.value->gateway.log_format, "json");

  auto bad = parse_config(R"([gateway]
log_format = "xml"
[alerting]
objective_percent = 100
webhooks = ["ftp://x", 3]
evaluation_interval_ms = 5
[hedge]
routes = "chat"
[[upstreams]]
url = "http://127.0.0.1:1/v1"
)",
                          "bad.toml");
  std::vector<std::pair<std::string, int>> got;
  for (const auto& p : bad.problems) {
    got.emplace_back(p.key, p.line);
  }
  const std::vector<std::pair<std::string, int>> want{
      {"gateway.log_format", 2},         {"alerting.objective_percent", 4},
      {"alerting.webhooks[0]", 5},       {"alerting.webhooks[1]", 5},
      {"alerting.evaluation_interval_ms", 6}, {"hedge.routes", 8}};
  EXPECT_EQ(got, want);
}

TEST(config, syntax_error_has_a_line) {
  auto r = parse_config("[gateway\nlisten = 1", "x.toml");
  ASSERT_EQ(r.problems.size(), 1U);
  EXPECT_EQ(r.problems[0].line, 1);
  EXPECT_NE(r.problems[0].message.find("TOML syntax"), std::string::npos);
}

// Found by tests/fuzz/config_fuzz.cpp: a table header that does not start with a key.
TEST(config, broken_table_header_is_a_syntax_problem) {
  auto r = parse_config("[(ateway]\nlisten = \"127.0.0.1:8080\"\n", "x.toml");
  ASSERT_EQ(r.problems.size(), 1U);
  EXPECT_EQ(r.problems[0].line, 1);
  EXPECT_NE(r.problems[0].message.find("TOML syntax"), std::string::npos);
}

TEST(config, requires_an_upstream) {
  auto r = parse_config("[gateway]\nlisten = \"127.0.0.1:1\"\n", "x.toml");
  ASSERT_EQ(r.problems.size(), 1U);
  EXPECT_EQ(r.problems[0].key, "upstreams");
}

TEST(config, from_flags) {
  auto r = config_from_flags("127.0.0.1:0", {"http://127.0.0.1:1", "http://127.0.0.1:2/x/v1"});
  ASSERT_TRUE(r.value);
  EXPECT_EQ(r.value->upstreams[1].name, "upstream-1");
  EXPECT_EQ(r.value->upstreams[1].base_path, "/x/v1");
  auto bad = config_from_flags("nowhere", {"mailto:x"});
  EXPECT_EQ(bad.problems.size(), 2U);
}

TEST(config, listen_address_forms) {
  EXPECT_EQ(parse_listen_address("0.0.0.0:80")->port, 80);
  EXPECT_EQ(parse_listen_address("[::1]:8080")->host, "::1");
  EXPECT_FALSE(parse_listen_address("127.0.0.1"));
  EXPECT_FALSE(parse_listen_address("127.0.0.1:99999"));
  EXPECT_FALSE(parse_listen_address(":80"));
}

}  // namespace
}  // namespace nines::core

namespace nines::core {
namespace {

TEST(config_tls, a_tls_section_alone_makes_the_gateway_listener_speak_tls) {
  auto r = parse_config(R"([gateway]
listen = "127.0.0.1:8443"
[tls]
cert_file = "/etc/nines/chain.pem"
key_file = "/etc/nines/key.pem"
min_version = "1.3"
[[tls.sni]]
server_name = "API.Example.com"
cert_file = "/etc/nines/api.pem"
key_file = "/etc/nines/api.key"
[[upstreams]]
url = "http://127.0.0.1:9001/v1"
)",
                        "tls.toml");
  ASSERT_TRUE(r.problems.empty()) << format_problem("tls.toml", r.problems.front());
  const auto& t = r.value->tls;
  EXPECT_TRUE(t.enabled());
  EXPECT_EQ(t.min_version, tls_min_version::tls1_3);
  ASSERT_EQ(t.sni.size(), 1U);
  EXPECT_EQ(t.sni[0].server_name, "api.example.com");  // names compare in lower case
  const auto listeners = api_listeners_of(*r.value);
  EXPECT_FALSE(listeners.plain);
  ASSERT_TRUE(listeners.tls);
  EXPECT_EQ(listeners.tls->port, 8443);
  EXPECT_EQ(r.value->timeouts.tls_handshake, std::chrono::milliseconds(10000));
}

TEST(config_tls, tls_listen_runs_beside_the_plain_listener_on_another_port) {
  auto r = parse_config(R"([gateway]
listen = "127.0.0.1:8080"
[tls]
listen = "127.0.0.1:8443"
cert_file = "c.pem"
key_file = "k.pem"
[[upstreams]]
url = "http://127.0.0.1:9001/v1"
)",
                        "tls.toml");
  ASSERT_TRUE(r.problems.empty()) << format_problem("tls.toml", r.problems.front());
  const auto listeners = api_listeners_of(*r.value);
  ASSERT_TRUE(listeners.plain && listeners.tls);
  EXPECT_EQ(listeners.plain->port, 8080);
  EXPECT_EQ(listeners.tls->port, 8443);

  auto same = parse_config(R"([gateway]
listen = "127.0.0.1:8080"
[tls]
listen = "127.0.0.1:8080"
cert_file = "c.pem"
key_file = "k.pem"
[[upstreams]]
url = "http://127.0.0.1:9001/v1"
)",
                           "tls.toml");
  EXPECT_TRUE(has_problem(same, "tls.listen"));
}

TEST(config_tls, every_incomplete_or_ambiguous_tls_setting_is_a_problem) {
  auto r = parse_config(R"([tls]
key_file = "k.pem"
min_version = "1.0"
client_ca_file = "ca.pem"
colour = "red"
[[tls.sni]]
server_name = "a..example"
cert_file = "a.pem"
key_file = "a.key"
[[tls.sni]]
server_name = "b.example"
key_file = "b.key"
[[tls.sni]]
server_name = "B.example"
cert_file = "b.pem"
key_file = "b.key"
[timeouts]
tls_handshake_ms = 5
[[upstreams]]
url = "http://127.0.0.1:9001/v1"
)",
                        "bad.toml");
  EXPECT_FALSE(r.value);
  EXPECT_TRUE(has_problem(r, "tls.cert_file"));
  EXPECT_TRUE(has_problem(r, "tls.min_version"));
  EXPECT_TRUE(has_problem(r, "tls.colour"));
  EXPECT_TRUE(has_problem(r, "tls.sni[0].server_name"));
  EXPECT_TRUE(has_problem(r, "tls.sni[1].cert_file"));
  EXPECT_TRUE(has_problem(r, "tls.sni[2].server_name"));  // the same name twice
  EXPECT_TRUE(has_problem(r, "timeouts.tls_handshake_ms"));
}

}  // namespace
}  // namespace nines::core
