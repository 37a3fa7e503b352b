#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header,
// "00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>". The gateway continues a client's
// trace (same trace id, the client's span as parent) or starts one, gives its own hop a new span
// id, and sends that to the upstream, so that a request can be followed from agent to GPU server.
// Pure: ids come from the injected random generator.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/random.hpp"

namespace nines::core {

struct trace_context {
  std::string trace_id;   // 32 lower-case hex digits, not all zero
  std::string parent_id;  // the caller's span (16 hex), empty when the trace starts here
  std::string span_id;    // this hop's span (16 hex)
  std::uint8_t flags = 1; // 01: sampled

  // The traceparent to send on: our span is the upstream's parent.
  std::string traceparent() const;
};

// Appends "00-<trace id>-<span id>-<flags: 2 hex>": the traceparent a hop sends on.
void append_traceparent(std::string& out, std::string_view trace_id, std::string_view span_id,
                        std::uint8_t flags);

// Reads a traceparent; nullopt when it is not a valid version-00 value (then a new trace starts,
// as the specification asks). Upper-case hex, all-zero ids and version ff are invalid.
std::optional<trace_context> parse_traceparent(std::string_view header);

// Continues `incoming` (when valid) or starts a new trace, with a new span id for this hop.
trace_context continue_trace(std::string_view incoming, rng& random);

}  // namespace nines::core
