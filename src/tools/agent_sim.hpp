#pragma once
// `nines agent-sim`: an agent-loop simulator that drives phones the way Open-AutoGLM does, to
// measure the whole link as a user sees it. One agent per phone, one step after another; a step
// is
//
//   1. adb shell screencap -p PATH      (host protocol, to --adb-port: an adb server, or the
//   2. adb pull PATH                     keeper's ADB proxy)
//   3. a streamed chat request with the screenshot as a base64 image, temperature 0, to --chat
//      (nines edge, nines gateway or a model server)
//   4. adb shell input tap STEP PHONE   (the step's own coordinates)
//
// and succeeds when the screenshot came whole (its size, a PNG signature), the answer is exactly
// the one mock-llm gives that request (core/tools/mock_model.hpp) and ended with [DONE] without an
// error event, and the tap reached the phone exactly once: with --tap-log, the phones' own record
// (`nines fake-adbd` prints "tap SERIAL X Y" as each lands) is read after the run. An agent does
// not retry: the first hop that fails ends its step, and the report names it.
//
// Reported: steps, successes, the success rate, p50/p99/max step time (of the successful steps),
// failures by hop and reason; as text on stdout and as JSON with --json.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace nines::tools {

struct agent_sim_options {
  std::uint16_t adb_port = 5037;
  std::vector<std::string> phones;  // serials, as the adb server lists them
  std::string chat_url = "http://127.0.0.1:8080";
  std::size_t steps = 100;                         // in all, shared by the phones' agents
  std::size_t screenshot_bytes = 2 * 1024 * 1024;  // what a pull must bring
  std::size_t answer_tokens = 24;                  // mock-llm's --tokens
  std::string model = "mock-model";
  std::string screen_path = "/sdcard/nines-agent.png";
  unsigned adb_timeout_ms = 15000;  // each ADB command, the keeper's hold included
  unsigned chat_timeout_ms = 60000;
  unsigned min_step_ms = 0;         // the agent's own time per step: no step is shorter
  double max_seconds = 1800;  // a hard end: steps not begun by then are not run
  std::string tap_log;        // the phones' output with their "tap ..." lines
  double objective = 0.9999;  // exit 0 when the success rate is at least this
  std::string json_path;
  std::string label = "agent-sim";
};

// 0 when the success rate met the objective and no tap landed twice, 1 otherwise, 2 on bad
// options.
int run_agent_sim(const agent_sim_options& options);

}  // namespace nines::tools
