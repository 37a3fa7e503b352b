#pragma once
// Continuing a broken stream on another upstream, as pure functions over JSON text.
//
// At temperature 0 the continuation of a deterministic model, given the text it already produced,
// is the rest of the same answer. So when a stream breaks after part of the answer reached the
// client, the gateway asks another upstream to continue: for chat, the original messages plus a
// final assistant message holding exactly the text already sent, with vLLM's and SGLang's
// `continue_final_message: true` and `add_generation_prompt: false` ("continue" mode; "prefill"
// mode sends the trailing assistant message without the flags); for completions, the original
// prompt followed by the text already sent. max_tokens (or max_completion_tokens) shrinks by the
// tokens already produced. The continuation's chunks are then rewritten to carry the original id,
// created and model, without a second role, and with usage that adds up.
//
// Reasoning models (a server with a reasoning parser: vLLM, SGLang) stream the thought in
// `delta.reasoning_content` (newer vLLM: `delta.reasoning`) before the answer in `delta.content`.
// The thought is tracked apart from the answer. With `reasoning_resume::think_tags` the
// continuation's assistant message is the raw text the model produced, in the form its parser
// reads back: "<think>" + thought so far, then "</think>" + answer so far once the answer began;
// the continuation's deltas are then put back in the field the client expects (a thought that
// goes on stays reasoning up to its "</think>"; once the answer began everything is answer,
// whichever field the server's parser chose). With `reasoning_resume::none` a stream whose
// thought reached the client is not continued (the client gets the explicit incomplete signal).
// docs/streams.md says which model families continue exactly this way.
//
// The Responses API is continued through the same functions: core/stream/responses_stream.hpp.
//
// Limits: choice 0 only (n = 1); a stream whose tool-call parts reached the client is not
// continued (the gateway holds tool-call chunks back until the call is complete, so this happens
// only past its hold limit); "tokens produced" counts chunks that carried text, which is exact
// for servers that stream one token per chunk (vLLM, SGLang) and an estimate otherwise.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nines::core {

enum class resume_mode { continue_message, prefill, none };
// How a continuation's assistant message carries a thought that reached the client:
//   think_tags          "<think>" + thought [+ "</think>" + answer]  (the model writes the tag)
//   think_tags_newline  "<think>\n" + thought [+ ...]  (a generation prompt that ends "<think>\n",
//                       rendered after the final message by vLLM: DeepSeek-R1, QwQ)
//   opened_think        thought [+ "</think>" + answer]  (SGLang appends the prefix after a
//                       generation prompt that already opened the thought)
//   none                not at all: such a stream is not continued
enum class reasoning_resume { think_tags, think_tags_newline, opened_think, none };

// The delta fields a reasoning server may use for the thought (a bit each).
inline constexpr std::uint8_t reasoning_content_field = 1;  // "reasoning_content"
inline constexpr std::uint8_t reasoning_field = 2;          // "reasoning"

// How a stream broke after part of it reached the client (the cause of a resume).
enum class stream_break {
  reset,        // the connection was reset or failed
  closed,       // it ended cleanly but without [DONE]
  stall,        // silence longer than the idle timeout
  malformed,    // an event that is not JSON (or half of one)
  error_event,  // the upstream sent an error object
  too_large,    // an event over the size limit
};
std::string_view to_string(stream_break cause);

// What one event of an OpenAI stream says.
struct stream_chunk {
  bool valid = false;         // a JSON object
  bool is_error = false;      // {"error": ...}
  std::string id;
  std::int64_t created = 0;
  std::string model;
  bool has_choice = false;    // choices[0] present
  bool other_choice = false;  // a choice with index != 0
  std::string text;           // choices[0].delta.content (chat) or choices[0].text
  std::string reasoning;      // choices[0].delta.reasoning_content or .reasoning
  std::uint8_t reasoning_fields = 0;  // which of the two carried it
  bool ambiguous_reasoning = false;   // both, with different texts
  bool has_role = false;
  bool tool_calls = false;
  std::optional<std::string> finish_reason;
  bool has_usage = false;
  std::optional<std::uint64_t> total_tokens;  // usage.total_tokens (also of a whole answer)
};

stream_chunk read_stream_chunk(std::string_view data);

// What the client has received of the answer so far.
struct stream_progress {
  bool identity_known = false;
  std::string id;
  std::int64_t created = 0;
  std::string model;
  std::string text;                // all answer text sent, choice 0
  std::size_t text_chunks = 0;     // chunks that carried text (tokens, for one-token chunks)
  std::string reasoning;           // all reasoning text sent, choice 0
  std::size_t reasoning_chunks = 0;
  std::uint8_t reasoning_fields = 0;  // the field names the client saw the thought in
  bool thought_closed = false;  // the thought is known to be over (a Responses reasoning item done)
  std::size_t carried_tokens = 0;  // tokens produced at the last resume (for usage)
  bool finished = false;           // a finish_reason was sent
  bool unsupported = false;        // tool calls or several choices: cannot be continued
  std::string unsupported_why;     // what made it so
  unsigned resumes = 0;

  void record(const stream_chunk& chunk);
  // Chunks that carried reasoning or answer text: the completion tokens produced so far.
  std::size_t tokens_produced() const { return text_chunks + reasoning_chunks; }
  bool answer_began() const { return !text.empty(); }
  bool thought_over() const { return answer_began() || thought_closed; }
};

// What the model produced so far as the raw text a continuation's assistant message carries:
// the answer, or with a thought in `form`.
std::string produced_text(const stream_progress& progress,
                          reasoning_resume form = reasoning_resume::think_tags);

// The request body that continues `original_body` after `progress`, or nullopt with `why`.
std::optional<std::string> build_continuation(std::string_view original_body, bool chat,
                                              const stream_progress& progress, resume_mode mode,
                                              reasoning_resume reasoning, std::string& why);

// Rewrites one event of a continuation into the original stream: original id, created and model;
// no role; reasoning and answer text in the fields the client expects; usage counting the tokens
// produced before the resume. Returns nullopt when the event carries nothing for the client (the
// continuation's opening role chunk).
// A "</think>" the server's parser left in the thought closes it in `progress`.
std::optional<std::string> rewrite_continuation_chunk(std::string_view data,
                                                      stream_progress& progress);

}  // namespace nines::core
