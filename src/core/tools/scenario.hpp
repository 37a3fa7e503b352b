#pragma once
// A reliability scenario (bench/scenarios/*.toml): a topology of mock model servers, optionally
// behind chaos links, a load, a timeline of faults, and the objectives a proxy must meet. Read
// and checked here; run by src/tools/scenario_runner.cpp against nines, nginx and HAProxy alike.
// The file format is documented in bench/scenarios/README.md.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/config/config_problem.hpp"

namespace nines::core {

struct scenario_upstream {
  std::size_t index = 0;
  bool refuse = false;  // the port is held and every connection refused
  std::string faults;   // mock-llm --faults for this upstream (replaces the topology's)
};

enum class scenario_action { kill, restart, faults, toxic, remove_toxic, link_down, link_up };
std::string_view to_string(scenario_action action);

struct scenario_event {
  double at_s = 0;  // seconds after the load starts (scaled in quick runs)
  scenario_action action = scenario_action::kill;
  std::vector<std::size_t> targets;  // upstream or link indices
  std::string value;                 // faults "k=v,...", a toxic "type=...,...", a toxic's name
};

struct scenario_load {
  std::string route = "chat";
  bool stream = true;
  double rate = 100;        // requests per second, open loop
  double duration_s = 20;   // seconds of sending
  unsigned connections = 1024;
  std::size_t image_bytes = 0;
};

struct scenario_timeouts {
  unsigned connect_ms = 2000;
  unsigned first_byte_ms = 10000;  // until the response header (nginx, HAProxy: read timeout)
  unsigned stream_idle_ms = 3000;  // silence within a stream
};

struct scenario_objectives {
  double success_rate = 0.9999;
  std::optional<double> ttft_p99_ms;
  std::optional<double> total_p99_ms;
};

struct scenario {
  std::string name;     // from the file name
  std::string title;
  std::string summary;
  std::size_t upstreams = 3;
  std::size_t tokens = 24;
  std::size_t thought_tokens = 0;  // a reasoning model: mock-llm --thought-tokens
  std::string faults;   // mock-llm --faults for every upstream
  bool chaos = false;   // a chaos link in front of every upstream (link i → upstream i)
  std::vector<scenario_upstream> overrides;
  std::string nines_config;  // extra TOML appended to the gateway's config
  std::vector<std::string> proxies{"nines", "nginx", "haproxy"};  // which proxies it applies to
  scenario_load load;
  scenario_load quick;  // the load of a quick run (CI): same, but shorter
  scenario_timeouts timeouts;
  std::vector<scenario_event> timeline;  // sorted by time
  scenario_objectives objectives;
};

struct scenario_result {
  std::optional<scenario> value;  // set when problems is empty
  std::vector<config_problem> problems;
};

scenario_result parse_scenario(std::string_view toml_text, std::string_view source,
                               std::string_view name);

// The timeline of a quick run: event times scaled by quick/full duration.
std::vector<scenario_event> quick_timeline(const scenario& s);

// One objective against what a run measured.
struct objective_check {
  std::string name;  // "success rate", "ttft p99", "total p99"
  double target = 0;
  double measured = 0;
  bool met = false;
  std::string text;  // "100.0000% >= 99.9900%"
};

struct run_measurements {
  std::size_t requests = 0;
  double success_rate = 0;
  double ttft_p99_ms = 0;
  double total_p99_ms = 0;
};

std::vector<objective_check> check_objectives(const scenario_objectives& objectives,
                                              const run_measurements& measured);

}  // namespace nines::core
