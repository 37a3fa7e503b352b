#pragma once
// How each streamed API ends, and how nines says that a stream of it could not be completed.
//
//   openai_chunks  /v1/chat/completions, /v1/completions: JSON chunks, then "data: [DONE]"
//   responses      /v1/responses: typed events ({"type": ..., "sequence_number": n}); the stream
//                  ends with response.completed, response.failed or response.incomplete, and an
//                  {"type":"error"} event is a break
//   messages       /v1/messages (Anthropic-style): typed events, ending with message_stop; an
//                  {"type":"error"} event is a break
//   opaque         any route nines does not know (routes.passthrough): relayed byte for byte and
//                  judged only by its transport; a break is never "completed" with an event of a
//                  protocol nines does not speak: the client's transfer is cut instead (an HTTP/1.1
//                  chunked body without its last chunk, which every client reports as an error)

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/http/api_routes.hpp"

namespace nines::core {

enum class stream_dialect : std::uint8_t { openai_chunks, responses, messages, opaque };

stream_dialect dialect_of(api_route route);

// What one event of a typed stream (responses, messages) says: the JSON object's "type" and, for
// the Responses API, its "sequence_number".
struct typed_event {
  bool valid = false;  // a JSON object with a string "type"
  std::string type;
  std::optional<std::int64_t> sequence_number;
};
typed_event read_typed_event(std::string_view data);

// The event type that ends a stream of `dialect` normally.
bool is_terminal_event(stream_dialect dialect, std::string_view type);

// The explicit end of a stream that cannot be completed, in the dialect's own form: an SSE event
// type (empty: none) and its data. openai_chunks: an OpenAI error object of type
// "stream_incomplete"; responses: an "error" event with code "stream_incomplete", the next
// sequence number and an OpenAI error object (so that the openai SDK raises it); messages: an "error" event as Anthropic's API sends one. Not for opaque.
struct incomplete_event {
  std::string type;
  std::string data;
};
incomplete_event make_incomplete_event(stream_dialect dialect, std::string_view message,
                                       std::optional<std::int64_t> last_sequence);

}  // namespace nines::core
