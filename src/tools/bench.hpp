#pragma once
// `nines bench`: a load generator for the OpenAI API that checks every answer. Each of
// `concurrency` clients sends requests back to back over its own keep-alive connection (closed
// loop) until `requests` have been sent or `max_seconds` have passed. An answer counts as a success
// only when it is complete (a stream saw [DONE]) and, with --validate, equal byte for byte to the
// answer mock-llm must give. Reports success rate, status counts, time to first byte and total
// latency percentiles, as a table and as JSON.

#include <string>

namespace CLI {
class App;
}

namespace nines::tools {

struct bench_options {
  std::string url = "http://127.0.0.1:8080";
  std::string route = "chat";  // chat or completions
  bool stream = true;
  std::size_t requests = 1000;
  unsigned concurrency = 16;
  double max_seconds = 120;
  std::size_t prompts = 64;           // distinct prompts cycled through
  std::size_t image_bytes = 0;        // size of a base64 image part in each chat request
  std::size_t answer_tokens = 24;     // mock-llm's --tokens, for --validate
  bool validate = true;
  std::string json_path;              // also write the report as JSON here
};

void add_bench_options(CLI::App& app, bench_options& options);

// Exit code 0 when every request succeeded, 1 otherwise.
int run_bench(const bench_options& options);

}  // namespace nines::tools
