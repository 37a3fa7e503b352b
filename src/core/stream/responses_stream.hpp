#pragma once
// The Responses API (POST /v1/responses, stream: true) as the client has received it, and its
// continuation on another upstream through chat completions.
//
// A Responses stream is typed events: response.created, output items (a reasoning item, a
// message, function calls) each opened by response.output_item.added and closed by
// response.output_item.done, text arriving as response.reasoning_text.delta and
// response.output_text.delta, every event with a sequence_number, and response.completed at the
// end. `responses_progress` follows what the client was sent: the response object, the items and
// their text, the last sequence number; and the text as a chat stream would carry it
// (`stream_progress`: the thought, the answer, tokens produced), so that a break continues exactly
// as a chat stream does: the original request translated to chat (`responses_as_chat`), plus the
// produced text as a final assistant message (core::build_continuation). The continuation's chat
// chunks are turned back into Responses events of the same response (`continue_with`,
// `complete`): the original response and item ids, sequence numbers going on from the last one
// sent, the open item continued, new items opened where the chat stream moves on (the answer
// after the thought, function calls at the end), and one response.completed whose output holds
// every item and whose usage counts every token.
//
// Continued exactly: one reasoning item, then one message with one output_text part. Not
// continued (the client gets the explicit error event): a function call the client already
// received (calls are held until complete, so only a call over the hold limit), several message
// or reasoning items, refusals, other part or item types.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "core/http/sse_parser.hpp"
#include "core/stream/stream_continuation.hpp"

namespace nines::core {

// The chat completions request that stands for a Responses request: instructions as a system
// message, input items as messages (input_text and output_text parts as text, input_image as
// image_url, function_call as an assistant tool call, function_call_output as a tool message),
// max_output_tokens as max_tokens, function tools and tool_choice, text.format as
// response_format, stream with usage. nullopt with `why` when the request uses something a chat
// request cannot say exactly (previous_response_id, built-in tools, unknown fields or items).
std::optional<std::string> responses_as_chat(std::string_view responses_body, std::string& why);

struct responses_item {
  std::string type;  // "reasoning", "message", "function_call", ...
  std::string id;
  bool done = false;
  bool part_open = false;   // a content part was added and not yet done
  std::string text;         // its reasoning_text or output_text so far
  boost::json::object item; // as the client last saw it (output_item.done's item when done)
};

class responses_progress {
 public:
  // Records one event the client was sent; `chat`, when given, gets the text it carried.
  void record(const boost::json::object& event, stream_progress* chat);

  // Whether `event` belongs to a function call not yet complete, to be held back until its
  // output_item.done (returns false for that one: what was held goes out, then it), like chat
  // tool calls. Call for every event before record, in order.
  bool hold(const boost::json::object& event);
  // A break discarded the held call: the client never saw it.
  void forget_held_call() { call_in_progress_.clear(); }
  // A continuation starts: what a previous one kept for its end (tool-call parts, its finish
  // and usage) is dropped with it; the client never saw it.
  void begin_continuation() {
    call_in_progress_.clear();
    calls_.clear();
    call_bytes_ = 0;
    finish_reason_.reset();
    usage_ = {};
  }

  bool unsupported() const { return !unsupported_why_.empty(); }
  const std::string& unsupported_why() const { return unsupported_why_; }
  std::optional<std::int64_t> last_sequence() const { return last_sequence_; }
  bool created() const { return !response_.empty(); }

  // The events that carry one chat chunk of a continuation (its thought or answer, already
  // placed by core::rewrite_continuation_chunk) into this response. Tool-call parts are kept
  // until `complete`; a usage chunk is kept for it.
  void continue_with(std::string_view rewritten_chunk, const stream_chunk& chunk,
                     std::vector<sse_event>& out);
  // The continuation ended ([DONE]): the open item closed, kept function calls as items, then
  // response.completed (response.incomplete when the chat stream stopped for length). Writes
  // nothing when the response cannot be completed (unsupported(): the caller ends explicitly).
  void complete(const stream_progress& chat, std::vector<sse_event>& out);

 private:
  void emit(std::string_view type, boost::json::object fields, std::vector<sse_event>& out);
  responses_item* open_item();
  void close_open_item(std::vector<sse_event>& out);
  void open_message(std::vector<sse_event>& out);
  void open_reasoning(std::vector<sse_event>& out);
  void note_unsupported(std::string why);

  boost::json::object response_;  // response.created's response
  std::vector<responses_item> items_;
  std::optional<std::int64_t> last_sequence_;
  std::string unsupported_why_;
  std::string call_in_progress_;  // the id of a function call item being held back
  // From a continuation: tool calls by index (id, name, arguments), its finish and its usage.
  struct pending_call {
    std::string call_id;
    std::string name;
    std::string arguments;
  };
  std::vector<pending_call> calls_;
  std::size_t call_bytes_ = 0;
  std::optional<std::string> finish_reason_;
  boost::json::object usage_;
};

}  // namespace nines::core
