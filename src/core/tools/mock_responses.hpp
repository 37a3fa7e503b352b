#pragma once
// The Responses API (POST /v1/responses) as `nines mock-llm` serves it: the answer of
// core/tools/mock_model.hpp as typed events, in the order vLLM sends them —
//
//   response.created, response.in_progress,
//   [a thought] response.output_item.added (reasoning), response.reasoning_text.delta...,
//               response.reasoning_text.done, response.output_item.done,
//   response.output_item.added (message), response.content_part.added,
//   response.output_text.delta..., response.output_text.done, response.content_part.done,
//   response.output_item.done,
//   response.completed (or response.incomplete when max_output_tokens cut the answer)
//
// — each with a "sequence_number" counting from 0 and no [DONE]. Shared with the tests, which
// read the same events back.

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/tools/mock_model.hpp"

namespace nines::core {

struct mock_response_identity {
  std::string id;       // "resp_..."
  std::int64_t created_at = 0;
  std::string model;
};

// One SSE event on the wire; `token` marks the deltas (what the mock's faults count).
struct mock_sse_event {
  std::string wire;
  bool token = false;
};

// With `tool` (the request offered function tools: the first one's name), the answer is, as in
// chat (core::plan_mock_tool_call), the message's first tokens and then one function_call item
// whose arguments stream in the call's pieces (each a fault-counted token). `answer_tokens` is
// the mock's --tokens.
std::vector<mock_sse_event> mock_response_events(const mock_plan& plan,
                                                 const mock_response_identity& identity,
                                                 const std::string* tool = nullptr,
                                                 std::size_t answer_tokens = 0);

// The first function tool's name of a Responses request, if it offers one.
std::optional<std::string> mock_responses_tool(const boost::json::object& request);

// The whole response object, for a request without "stream".
std::string mock_response_json(const mock_plan& plan, const mock_response_identity& identity);

}  // namespace nines::core
