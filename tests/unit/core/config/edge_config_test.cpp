// The edge's file: [edge] and [[uplinks]] with the gateway's other tables, its own defaults, and
// every problem named with the edge's keys.

#include <gtest/gtest.h>

#include "core/config/config.hpp"
#include "config_problems.hpp"

namespace nines::core {
namespace {

using std::chrono::milliseconds;

TEST(edge_config, reads_edge_and_uplinks_with_the_edge_defaults) {
  auto r = parse_config(R"(
[edge]
workers = 1

[[uplinks]]
name = "wifi"
url = "http://10.0.0.5:8080/v1"
bind_interface = "wlan0"

[[uplinks]]
url = "https://gw.example/v1"
priority = 1
bind_address = "2001:db8::2"
)",
                        "edge.toml", config_role::edge);
  ASSERT_TRUE(r.problems.empty()) << format_problem("edge.toml", r.problems.front());
  const auto& c = *r.value;
  EXPECT_EQ(c.role, config_role::edge);
  EXPECT_EQ(c.gateway.listen.host, "127.0.0.1");
  EXPECT_EQ(c.gateway.listen.port, 8081);
  EXPECT_EQ(c.admin.listen.port, 9902);
  EXPECT_EQ(c.health.path, "/readyz");
  EXPECT_EQ(c.routing.connect_race, milliseconds(250));
  EXPECT_EQ(c.gateway.workers, 1U);
  ASSERT_EQ(c.upstreams.size(), 2U);
  EXPECT_EQ(c.upstreams[0].bind_interface, "wlan0");
  EXPECT_EQ(c.upstreams[1].name, "uplink-1");
  EXPECT_EQ(c.upstreams[1].bind_address, "2001:db8::2");
}

TEST(edge_config, the_gateway_keeps_its_own_defaults) {
  const auto c = defaults_of(config_role::gateway);
  EXPECT_EQ(c.gateway.listen.port, 8080);
  EXPECT_EQ(c.admin.listen.port, 9901);
  EXPECT_EQ(c.health.path, "/health");
  EXPECT_EQ(c.routing.connect_race, milliseconds(0));  // no racing unless asked
}

TEST(edge_config, explicit_values_win_over_the_edge_defaults) {
  auto r = parse_config(R"(
[edge]
listen = "127.0.0.1:7000"
[health]
path = "/health"
[routing]
connect_race_ms = 0
[[uplinks]]
url = "http://127.0.0.1:1/v1"
)",
                        "edge.toml", config_role::edge);
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.value->gateway.listen.port, 7000);
  EXPECT_EQ(r.value->health.path, "/health");
  EXPECT_EQ(r.value->routing.connect_race, milliseconds(0));
}

TEST(edge_config, problems_are_named_with_the_edge_keys) {
  auto r = parse_config(R"(
[edge]
listen = "nowhere"
bogus = 1
[[uplinks]]
url = "ftp://x"
bind_address = "10.0.0.256"
bind_interface = "wl an0"
[[uplinks]]
name = "uplink-0"
url = "http://127.0.0.1:1/v1"
bind_interface = "a-name-longer-than-15"
)",
                        "edge.toml", config_role::edge);
  EXPECT_TRUE(has_problem(r, "edge.listen", "host:port"));
  EXPECT_TRUE(has_problem(r, "edge.bogus", "unknown key"));
  EXPECT_TRUE(has_problem(r, "uplinks[0].url", "http://"));
  EXPECT_TRUE(has_problem(r, "uplinks[0].bind_address", "IPv4 or IPv6"));
  EXPECT_TRUE(has_problem(r, "uplinks[0].bind_interface", "interface name"));
  EXPECT_TRUE(has_problem(r, "uplinks[1].bind_interface", "interface name"));
  EXPECT_TRUE(has_problem(r, "uplinks[1].name", "duplicate uplink name"));
  EXPECT_FALSE(r.value);
}

TEST(edge_config, a_file_for_the_other_role_is_refused_by_name) {
  auto edge_reads_gateway = parse_config(R"(
[gateway]
listen = "127.0.0.1:0"
[[upstreams]]
url = "http://127.0.0.1:1/v1"
)",
                                         "gw.toml", config_role::edge);
  EXPECT_TRUE(has_problem(edge_reads_gateway, "gateway", "nines edge reads [edge]"));
  EXPECT_TRUE(has_problem(edge_reads_gateway, "upstreams", "nines edge reads [[uplinks]]"));
  EXPECT_TRUE(has_problem(edge_reads_gateway, "uplinks", "at least one uplink is required"));

  auto gateway_reads_edge = parse_config(R"(
[[uplinks]]
url = "http://127.0.0.1:1/v1"
)",
                                         "edge.toml");
  EXPECT_TRUE(has_problem(gateway_reads_edge, "uplinks", "nines gateway reads [[upstreams]]"));
  EXPECT_TRUE(has_problem(gateway_reads_edge, "upstreams", "at least one upstream is required"));
}

TEST(edge_config, the_gateway_takes_a_path_out_too) {
  auto r = parse_config(R"(
[[upstreams]]
url = "http://127.0.0.1:1/v1"
bind_address = "127.0.0.2"
bind_interface = "lo"
)",
                        "gw.toml");
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.value->upstreams[0].bind_address, "127.0.0.2");
  EXPECT_EQ(r.value->upstreams[0].bind_interface, "lo");
}

TEST(edge_config, flags_build_uplinks_on_the_edge_default_listener) {
  gateway_flags f;
  f.role = config_role::edge;
  f.upstreams = {"http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"};
  auto r = config_from_flags(f);
  ASSERT_TRUE(r.problems.empty());
  EXPECT_EQ(r.value->gateway.listen.port, 8081);
  EXPECT_EQ(r.value->upstreams[1].name, "uplink-1");
  EXPECT_EQ(r.value->routing.connect_race, milliseconds(250));

  f.upstreams = {"mailto:x"};
  auto bad = config_from_flags(f);
  ASSERT_EQ(bad.problems.size(), 1U);
  EXPECT_EQ(bad.problems[0].key, "--uplink[0]");
}

TEST(edge_config, uplinks_ask_for_heartbeats_and_upstreams_do_not) {
  auto edge = parse_config(R"(
[[uplinks]]
url = "http://127.0.0.1:1/v1"
[[uplinks]]
url = "http://127.0.0.1:2/v1"
heartbeat_ms = 0
)",
                           "edge.toml", config_role::edge);
  ASSERT_TRUE(edge.problems.empty());
  EXPECT_EQ(edge.value->upstreams[0].heartbeat, milliseconds(250));
  EXPECT_EQ(edge.value->upstreams[1].heartbeat, milliseconds(0));
  auto gateway = parse_config("[[upstreams]]\nurl = \"http://127.0.0.1:1/v1\"\n", "gw.toml");
  ASSERT_TRUE(gateway.problems.empty());
  EXPECT_EQ(gateway.value->upstreams[0].heartbeat, milliseconds(0));
  for (const char* bad : {"50", "60001", "\"250\""}) {
    auto r = parse_config(std::string("[[uplinks]]\nurl = \"http://127.0.0.1:1/v1\"\nheartbeat_ms = ") +
                              bad + "\n",
                          "edge.toml", config_role::edge);
    EXPECT_FALSE(r.value) << bad;
    EXPECT_FALSE(r.problems.empty() || r.problems[0].key != "uplinks[0].heartbeat_ms") << bad;
  }
}

TEST(edge_config, addresses_and_interface_names) {
  EXPECT_TRUE(is_ip_literal("192.168.1.20"));
  EXPECT_TRUE(is_ip_literal("::1"));
  EXPECT_FALSE(is_ip_literal(""));
  EXPECT_FALSE(is_ip_literal("wlan0"));
  EXPECT_FALSE(is_ip_literal("1.2.3.4 "));
  EXPECT_TRUE(is_interface_name("wlan0"));
  EXPECT_TRUE(is_interface_name("rmnet_data0"));
  EXPECT_FALSE(is_interface_name(""));
  EXPECT_FALSE(is_interface_name("0123456789abcdef"));  // 16: IFNAMSIZ counts the NUL
  EXPECT_FALSE(is_interface_name("a/b"));
  EXPECT_FALSE(is_interface_name(".."));
  EXPECT_FALSE(is_interface_name(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace nines::core
