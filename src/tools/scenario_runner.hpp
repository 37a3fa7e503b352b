#pragma once
// `nines scenario`: runs reliability scenarios (core/tools/scenario.hpp) and reports what clients saw.
//
// For each scenario and each proxy it applies to (nines, nginx, HAProxy), the runner starts a
// fresh topology on 127.0.0.1 (mock-llm upstreams, a nines chaos process when the scenario has
// links), starts the proxy in front of it with an equivalent configuration (each with its own
// retry and health features set as a competent operator would), runs `nines bench` as an open-loop
// load against it, plays the scenario's fault timeline from the moment the load starts, and checks
// the objectives. The results go to a Markdown report (tables and the exact commands) and to
// JSON. Every load is bounded in count and time; every process is stopped at the end of its run.

#include <string>
#include <vector>

namespace nines::tools {

struct scenario_options {
  std::vector<std::string> files;                             // bench/scenarios/*.toml
  std::vector<std::string> proxies{"nines", "nginx", "haproxy"};
  bool quick = false;          // the scenarios' quick loads (CI)
  std::string markdown_path;   // the report; none when empty
  std::string json_path;       // every run's measurements
  std::string binary;          // the nines binary for mocks, chaos, bench and the gateway
  std::string command_line;    // how this run was invoked, for the report
};

// 0 when nines met every objective of every scenario it ran, 1 otherwise, 2 on bad input.
int run_scenarios(const scenario_options& options);

}  // namespace nines::tools
