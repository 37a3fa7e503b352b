#pragma once
// An incremental parser for server-sent events, following the WHATWG HTML "event stream
// interpretation" rules: lines end in CRLF, LF or CR; a line starting with ':' is a comment; a field
// value loses one leading space; "data" lines join with LF; a blank line dispatches; an event whose
// data buffer is empty is not dispatched; "id" containing NUL is ignored; "retry" must be digits.
//
// Bytes may arrive split anywhere, including inside a CRLF pair or a multi-byte UTF-8 character:
// the parser never interprets bytes across lines, so a split character is simply joined again.
// Memory is bounded by `max_event_bytes`: a longer line or event is an error, never a reallocation
// without limit. One parser belongs to one stream and one thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

struct sse_event {
  std::string type;  // empty means the default, "message"
  std::string data;  // data lines joined with '\n', without the final '\n'
  std::optional<std::string> id;  // the last event id in effect when this event was dispatched
  std::optional<unsigned long long> retry_ms;
};

enum class sse_error { none, event_too_large };

class sse_parser {
 public:
  explicit sse_parser(std::size_t max_event_bytes = 1 << 20) : max_event_bytes_(max_event_bytes) {}

  // Consumes `bytes` and appends each event completed by them to `out`. After an error the parser
  // stays failed: the stream is not trustworthy any more.
  sse_error feed(std::string_view bytes, std::vector<sse_event>& out);

  // True when no partial line or undispatched field is pending: the stream ended cleanly between
  // events.
  bool at_event_boundary() const { return line_.empty() && data_.empty() && !pending_; }

  const std::optional<std::string>& last_event_id() const { return last_event_id_; }

 private:
  void process_line(std::string_view line, std::vector<sse_event>& out);

  std::size_t max_event_bytes_;
  std::string line_;   // the current incomplete line
  std::string data_;   // data buffer of the event being built
  std::string type_;   // event type buffer
  std::optional<std::string> last_event_id_;
  std::optional<unsigned long long> retry_;
  bool pending_ = false;      // some field of the current event has been seen
  bool skip_lf_ = false;      // the previous chunk ended in CR: a leading LF belongs to it
  bool at_stream_start_ = true;  // a UTF-8 BOM may be skipped here
  bool failed_ = false;
};

// Serialises an event: "event:", "retry:", "data:" lines, then "id:" last, then a blank line.
void append_sse_event(std::string& out, const sse_event& event);

// Events in that form with their "id:" lines taken out (an answer kept to be sent again, whose
// ids named a stream that is not the one it is sent on).
std::string without_event_ids(std::string_view events);

}  // namespace nines::core
