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
// A reasoning mock (`thought_tokens` > 0) first "thinks": the model's raw output is the thought's
// tokens, then "</think>", then the answer's, as DeepSeek-R1 does after a template that opened
// "<think>". Positions [0, thought) are the thought, [thought, thought + answer) the answer. A
// continuation carries "<think>" + thought so far [+ "</think>" + answer so far] and goes on from
// there; one that carries text without the tag continues the answer, and an empty one starts over
// (what a model does when the gateway forgets the thought).
//
// Every token ends in a space and none is a suffix of another, so the number of tokens already
// produced can be read back from text. Some tokens are multi-byte UTF-8 on purpose.

#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

std::span<const std::string_view> mock_vocabulary();

enum class mock_api { chat, completions, responses };

struct mock_plan {
  std::uint64_t seed = 0;          // hash of the prompt the answer belongs to
  std::size_t thought_tokens = 0;  // positions [0, thought_tokens) are the thought
  std::size_t first_token = 0;     // tokens already produced (a continuation starts after them)
  std::size_t end_token = 0;       // one past the last token to produce
  bool stopped_by_length = false;  // max_tokens cut the answer short: finish_reason "length"
  bool continuation = false;
  bool thought_closed = false;     // a continuation whose prompt already ended the thought
  std::size_t prompt_tokens = 0;   // for usage: a rough count (bytes / 4)
};

// `chat` selects /v1/chat/completions rules; otherwise /v1/completions. Returns false with `error`
// set when the request lacks what the route needs (messages or prompt).
bool plan_mock_answer(const boost::json::object& request, bool chat, std::size_t answer_tokens,
                      mock_plan& plan, std::string& error);
// Any API, with a thought of `thought_tokens` before the answer's `answer_tokens`. The Responses
// API's prompt is read as the chat messages it stands for (instructions as a system message,
// input items as messages), so that a Responses request and its chat translation get one answer.
bool plan_mock_answer(const boost::json::object& request, mock_api api, std::size_t answer_tokens,
                      std::size_t thought_tokens, mock_plan& plan, std::string& error);

std::string_view mock_token(std::uint64_t seed, std::size_t position);

// The token at `position` of a plan's output (thought, then answer), and whether it is thought.
std::string_view mock_output_token(const mock_plan& plan, std::size_t position);
inline bool mock_in_thought(const mock_plan& plan, std::size_t position) {
  return position < plan.thought_tokens;
}

// The uninterrupted thought and answer of a plan, from its first token to its end.
struct mock_output {
  std::string thought;
  std::string answer;
};
mock_output mock_output_text(const mock_plan& plan);

// With `tools` in a chat request, the mock answers with content tokens [0, split) and then one
// call of the first tool whose arguments are {"steps": "<tokens [split, answer_tokens)>"},
// streamed in `pieces` argument deltas. Continuations only ever continue the content part.
struct mock_tool_call {
  std::size_t split = 0;
  std::string arguments;
  static constexpr std::size_t pieces = 4;
};
mock_tool_call plan_mock_tool_call(std::uint64_t seed, std::size_t answer_tokens);
// The call's arguments cut into its `pieces` deltas at character boundaries (JSON strings are
// Unicode text).
std::vector<std::string_view> mock_argument_pieces(const mock_tool_call& call);
// The id chat and the Responses API give the call of the answer for `seed`.
std::string mock_call_id(std::uint64_t seed);

// Tokens [from, to) of the answer for `seed`, concatenated.
std::string mock_answer_text(std::uint64_t seed, std::size_t from, std::size_t to);

// FNV-1a over the text; long texts (base64 images) are sampled at both ends plus their length.
std::uint64_t mock_text_hash(std::string_view text, std::uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace nines::core
