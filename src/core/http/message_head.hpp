#pragma once
// HTTP/1.1 message heads read strictly (RFC 9112 §2–5), as pure functions over bytes: the request
// line or the status line, then the header fields, each checked against the grammar. Nothing
// ambiguous is accepted — a bare LF or CR, obs-fold (a field line starting with white space),
// white space before a colon, a control byte in a value, a start line off the grammar: each is a
// refusal with its reason, never a guess (the differences between lenient parsers are what request
// smuggling exploits).
//
// Use: a `head_scanner` is fed the bytes buffered so far and says when they hold a complete head
// and how long it is (resuming where it stopped, so that a head arriving a byte at a time costs
// O(n)); then `parse_request_head` or `parse_response_head` reads it. The parsed head holds views
// into the caller's bytes, which must outlive it. The field vector keeps its capacity across
// messages when the head is reused.

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/http/ascii.hpp"

namespace nines::core {

struct header_field {
  std::string_view name;   // as sent; compare case-insensitively
  std::string_view value;  // without leading and trailing white space
};

enum class head_problem : std::uint8_t {
  none,
  too_large,            // the head is longer than allowed
  too_many_fields,      // more header fields than allowed
  bare_line_ending,     // a LF without CR before it, or a CR without LF after it
  bad_start_line,       // the request line or status line is off the grammar
  bad_method,           // not a token
  bad_target,           // empty, or a byte outside visible ASCII
  bad_version,          // not "HTTP/" DIGIT "." DIGIT
  unsupported_version,  // HTTP/x.y other than 1.0 and 1.1
  bad_status,           // not three digits from 100 to 599
  obs_fold,             // a field line continued on the next line (obsolete line folding)
  bad_field_name,       // empty, a byte outside tchar, or white space before the colon
  bad_field_value,      // NUL, a lone CR or LF, or another control byte
};

// A sentence for people: "the header has a line ending in a bare LF", ...
std::string_view describe(head_problem problem);

struct request_head {
  std::string_view method;
  std::string_view target;
  unsigned version = 11;  // 10 or 11
  std::vector<header_field> fields;
};

struct response_head {
  unsigned version = 11;  // 10 or 11
  unsigned status = 0;
  std::string_view reason;
  std::vector<header_field> fields;
};

// Finds where a head ends: the CRLF CRLF after the start line and the fields.
class head_scanner {
 public:
  explicit head_scanner(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // `bytes`: everything buffered since the head began (the same prefix on every call, growing).
  // Returns the head's length, its final empty line included, once it is complete; 0 while more
  // bytes are needed or when `problem` is set (too_large, bare_line_ending).
  std::size_t scan(std::string_view bytes, head_problem& problem);
  void reset() { checked_ = 0; }

 private:
  std::size_t max_bytes_;
  std::size_t checked_ = 0;  // bytes known not to end the head
};

// `head`: exactly the bytes `head_scanner` found (start line to the final empty line).
head_problem parse_request_head(std::string_view head, std::size_t max_fields, request_head& out);
head_problem parse_response_head(std::string_view head, std::size_t max_fields,
                                 response_head& out);

// The value of the only field named `name`; `count` says how many there were.
std::string_view field_value(const std::vector<header_field>& fields, std::string_view name,
                             std::size_t& count);

}  // namespace nines::core
