#pragma once
// `nines bench`: a load generator for the OpenAI API that checks every answer.
//
// Open loop (--rate R): request i is due at start + i / R, whether or not earlier answers have
// come back (wrk2's model); a due request takes an idle connection, opens a new one up to
// --connections, or waits for one. Every latency is measured from the request's due time, so a
// stalled server is charged for the requests it held back (no coordinated omission). Closed loop
// (--rate 0): --connections clients send back to back and latency counts from the send.
//
// An answer counts as a success only when it is complete (a stream saw [DONE]) and, with
// --validate, equal byte for byte to the answer mock-llm gives that request. Reported: success
// rate, status counts, failures by reason, and percentiles (p50/p90/p99/p99.9/max, from HDR-style
// histograms) of time to first byte, time to first token, inter-token latency and total latency;
// as a table, as a progress line on stderr during the run, and as JSON with --json.

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace nines::tools {

struct bench_options {
  std::string url = "http://127.0.0.1:8080";
  std::string route = "chat";  // chat or completions
  bool stream = true;
  double rate = 0;                    // requests per second (open loop); 0: closed loop
  double duration = 0;                // seconds of sending; 0: until --requests are sent
  std::size_t requests = 1000;        // at most this many requests in all
  unsigned connections = 16;          // most connections at once (closed loop: exactly)
  double max_seconds = 300;           // hard end of the run: what is still in flight fails
  double timeout = 120;               // seconds for one request, streaming included
  std::size_t prompts = 64;           // distinct prompts cycled through
  std::size_t image_bytes = 0;        // size of a base64 image part in each chat request
  double send_rate = 0;               // MB/s at which a request's body is written; 0: at once
  std::size_t answer_tokens = 24;     // mock-llm's --tokens, for --validate
  std::size_t thought_tokens = 0;     // mock-llm's --thought-tokens: the thought is checked too
  long max_tokens = -1;               // sent as max_tokens when >= 0
  bool validate = true;
  std::vector<std::string> headers;   // "name: value", added to every request
  double progress = 0;                // seconds between progress lines on stderr; 0: none
  std::string json_path;              // also write the report as JSON here
  std::string label;                  // a name for this run in the report
};

void add_bench_options(CLI::App& app, bench_options& options);

// Exit code 0 when every request succeeded, 1 otherwise, 2 on bad options.
int run_bench(const bench_options& options);

}  // namespace nines::tools
