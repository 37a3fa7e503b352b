#pragma once
// The deterministic "model" behind `nines mock-llm`, shared with `nines bench` and the tests so
// that they can compute the exact answer a request must receive.
//
// Like a language model at temperature 0, the answer depends only on the prompt: token i of the
// answer to a prompt is a pure function of (hash of the prompt, i). The answer has a fixed length
// (the mock's configured answer length), shortened by max_tokens. The mock honours vLLM's
// continuation convention: a chat request whose last message is the assistant's, with
// `continue_final_message: true`, continues that message; a completion whose prompt ends in answer
// tokens continues after them. A correct continuation therefore yields exactly the rest of the
// original answer, which is what the gateway's stream continuation relies on and tests check.
//
// Every token ends in a space and none is a suffix of another, so the number of tokens already
// produced can be read back from text. Some tokens are multi-byte UTF-8 on purpose.

#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace nines::core {

std::span<const std::string_view> mock_vocabulary();

struct mock_plan {
  std::uint64_t seed = 0;          // hash of the prompt the answer belongs to
  std::size_t first_token = 0;     // tokens already produced (a continuation starts after them)
  std::size_t end_token = 0;       // one past the last token to produce
  bool stopped_by_length = false;  // max_tokens cut the answer short: finish_reason "length"
  bool continuation = false;
  std::size_t prompt_tokens = 0;   // for usage: a rough count (bytes / 4)
};

// `chat` selects /v1/chat/completions rules; otherwise /v1/completions. Returns false with `error`
// set when the request lacks what the route needs (messages or prompt).
bool plan_mock_answer(const boost::json::object& request, bool chat, std::size_t answer_tokens,
                      mock_plan& plan, std::string& error);

std::string_view mock_token(std::uint64_t seed, std::size_t position);

// With `tools` in a chat request, the mock answers with content tokens [0, split) and then one
// call of the first tool whose arguments are {"steps": "<tokens [split, answer_tokens)>"},
// streamed in `pieces` argument deltas. Continuations only ever continue the content part.
struct mock_tool_call {
  std::size_t split = 0;
  std::string arguments;
  static constexpr std::size_t pieces = 4;
};
mock_tool_call plan_mock_tool_call(std::uint64_t seed, std::size_t answer_tokens);

// Tokens [from, to) of the answer for `seed`, concatenated.
std::string mock_answer_text(std::uint64_t seed, std::size_t from, std::size_t to);

// FNV-1a over the text; long texts (base64 images) are sampled at both ends plus their length.
std::uint64_t mock_text_hash(std::string_view text, std::uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace nines::core
