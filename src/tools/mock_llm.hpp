#pragma once
// `nines mock-llm`: an OpenAI-compatible model server for tests, demos and benchmarks, faulty on
// demand. Its answers come from core/tools/mock_model.hpp (deterministic, continuation-aware); its faults
// are set by flags, replaced at run time with POST /mock/faults, or chosen per request with an
// `x-mock-fault` header ("die_after=3,stall_after=5"). GET /mock/stats counts what it served.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::tools {

struct mock_faults {
  double error_rate = 0;       // share of requests answered 503
  double rate_limit_rate = 0;  // share answered 429 with Retry-After
  double break_rate = 0;       // share of streams (not continuations) reset at a random token
  unsigned retry_after_s = 1;
  std::optional<std::size_t> die_after;        // tokens, then the connection is reset
  std::optional<std::size_t> stall_after;      // tokens, then silence with the connection open
  std::optional<std::size_t> malformed_after;  // tokens, then a broken chunk and a close
  std::optional<std::size_t> cut_after;        // tokens, then half of the next chunk and a reset
  std::chrono::milliseconds ttft{0};           // time to first token
  std::chrono::milliseconds tpot{0};           // time per output token
};

// Parses "key=value,key=value" (the header and flag syntax); returns an error message or empty.
std::string parse_mock_faults(std::string_view text, mock_faults& faults);

struct mock_options {
  std::string listen = "127.0.0.1:9001";
  unsigned workers = 1;
  std::size_t answer_tokens = 24;
  std::string model = "mock-model";
  // A reasoning model (core/tools/mock_model.hpp): the thought streams in `reasoning_field`
  // ("reasoning_content", "reasoning" or "both") before the answer in `content`, as vLLM's and
  // SGLang's reasoning parsers send it. The parser sees only the output: a continuation that
  // starts after the thought has no "</think>" in it, so all of it is called reasoning, as
  // DeepSeek-R1's parser does.
  std::size_t thought_tokens = 0;
  std::string reasoning_field = "reasoning_content";
  mock_faults faults{};
  std::uint64_t seed = 1;
  bool refuse = false;  // hold the port but refuse every connection
  bool stamp = false;   // add "x_sent_ns" (CLOCK_MONOTONIC) to each chunk, for latency benches
  // Credentials, for tests of upstream keys and tokens: with either set, /v1/* needs
  // `Authorization: Bearer` with one of accept_keys or a token it issued and that has not expired
  // (401 otherwise). token_ttl_s > 0 serves POST /oauth/token (client credentials, HTTP Basic
  // with oauth_client "id:secret").
  std::vector<std::string> accept_keys;
  unsigned token_ttl_s = 0;
  std::string oauth_client = "nines:client-secret";
};

// Runs until SIGTERM/SIGINT. Returns the exit code; throws on startup failures.
int run_mock_llm(const mock_options& options);

}  // namespace nines::tools
