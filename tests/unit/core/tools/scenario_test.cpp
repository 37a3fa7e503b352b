#include "core/tools/scenario.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(scenario, reads_topology_load_timeline_and_objectives) {
  auto r = parse_scenario(R"(
title = "Kill"
summary = "one dies"
proxies = ["nines", "haproxy"]
[topology]
upstreams = 3
tokens = 12
faults = "ttft_ms=20"
chaos = true
[[topology.upstream]]
index = 2
refuse = true
[timeouts]
stream_idle_ms = 1500
[nines]
config = "[retry]\nmax_resumes = 5\n"
[load]
rate = 200
duration_s = 40
[quick]
duration_s = 4
[[timeline]]
at_s = 30
action = "restart"
upstream = 1
[[timeline]]
at_s = 10
action = "kill"
upstream = [0, 1]
[[timeline]]
at_s = 20
action = "toxic"
link = 2
value = "type=latency,latency=100"
[objectives]
success_rate = 0.999
ttft_p99_ms = 800
)",
                          "kill.toml", "kill");
  ASSERT_TRUE(r.problems.empty()) << format_problem("kill.toml", r.problems.front());
  const auto& s = *r.value;
  EXPECT_EQ(s.name, "kill");
  EXPECT_EQ(s.proxies, (std::vector<std::string>{"nines", "haproxy"}));
  EXPECT_EQ(s.tokens, 12U);
  ASSERT_EQ(s.overrides.size(), 1U);
  EXPECT_TRUE(s.overrides[0].refuse);
  EXPECT_EQ(s.timeouts.stream_idle_ms, 1500U);
  EXPECT_EQ(s.timeouts.first_byte_ms, 10000U);  // a default
  EXPECT_EQ(s.load.rate, 200);
  EXPECT_EQ(s.quick.rate, 200);  // the quick load is the full one, shorter
  EXPECT_EQ(s.quick.duration_s, 4);
  // Sorted by time.
  ASSERT_EQ(s.timeline.size(), 3U);
  EXPECT_EQ(s.timeline[0].action, scenario_action::kill);
  EXPECT_EQ(s.timeline[0].targets, (std::vector<std::size_t>{0, 1}));
  EXPECT_EQ(s.timeline[2].action, scenario_action::restart);
  // Quick runs play the same timeline, scaled: 10 s of 40 become 1 s of 4.
  const auto quick = quick_timeline(s);
  EXPECT_DOUBLE_EQ(quick[0].at_s, 1.0);
  EXPECT_DOUBLE_EQ(quick[2].at_s, 3.0);
  EXPECT_EQ(s.objectives.success_rate, 0.999);
  EXPECT_EQ(s.objectives.ttft_p99_ms, 800);
  EXPECT_FALSE(s.objectives.total_p99_ms);
}

TEST(scenario, every_problem_is_listed_with_its_place) {
  auto r = parse_scenario(R"(
summary = "no title"
colour = "red"
[topology]
upstreams = 2
[load]
rate = 0
route = "images"
[[timeline]]
at_s = 99
action = "explode"
upstream = 1
[[timeline]]
at_s = 1
action = "toxic"
link = 0
value = "type=lag"
[[timeline]]
at_s = 1
action = "kill"
upstream = 5
)",
                          "bad.toml", "bad");
  ASSERT_FALSE(r.value);
  std::vector<std::string> lines;
  for (const auto& p : r.problems) {
    lines.push_back(format_problem("bad.toml", p));
  }
  const auto has = [&](const std::string& text) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  EXPECT_TRUE(has("bad.toml:3:10: colour: unknown key"));
  EXPECT_TRUE(has("title: is required"));
  EXPECT_TRUE(has("bad.toml:7:8: load.rate: must be between"));
  EXPECT_TRUE(has("load.route: must be \"chat\" or \"completions\""));
  EXPECT_TRUE(has("timeline[0].at_s: must be between 0 and 20"));
  EXPECT_TRUE(has("timeline[0].action: must be one of"));
  EXPECT_TRUE(has("timeline[1].action: needs chaos links"));
  EXPECT_TRUE(has("timeline[1].value: not a toxic"));
  EXPECT_TRUE(has("timeline[2].upstream: must be an index from 0 to 1"));
  EXPECT_EQ(parse_scenario("title = ", "x.toml", "x").problems.at(0).message.rfind("TOML syntax", 0),
            0U);
}

TEST(scenario, objectives_are_checked_against_measurements) {
  scenario_objectives o;
  o.success_rate = 0.9999;
  o.ttft_p99_ms = 500;
  run_measurements m;
  m.requests = 10000;
  m.success_rate = 0.9999;
  m.ttft_p99_ms = 499.9;
  auto checks = check_objectives(o, m);
  ASSERT_EQ(checks.size(), 2U);
  EXPECT_TRUE(checks[0].met);
  EXPECT_TRUE(checks[1].met);
  m.success_rate = 0.9998;
  m.ttft_p99_ms = 501;
  checks = check_objectives(o, m);
  EXPECT_FALSE(checks[0].met);
  EXPECT_FALSE(checks[1].met);
  EXPECT_EQ(checks[0].text, "99.9800% < 99.9900%");
  // A run that measured nothing meets nothing.
  m = run_measurements{};
  m.success_rate = 1;
  EXPECT_FALSE(check_objectives(o, m)[0].met);
}

}  // namespace
}  // namespace nines::core
