#pragma once
// The chunked transfer coding (RFC 9112 §7.1), decoded incrementally and strictly, for request
// bodies from clients and response bodies from upstreams alike.
//
// Strict: a chunk size is 1 to 16 hex digits followed by CRLF or by `;` and extensions, with no
// white space before them; every line ends in CRLF (a bare LF or CR is an error); chunk data is
// followed by exactly CRLF. Bounded: chunk extensions and trailer fields of one body count
// together against `max_meta_bytes` (an unterminated extension is cut there, never buffered
// without end), and the data against `max_body_bytes`. Trailer fields are checked and dropped:
// they never become header fields of the message.
//
// The decoder keeps no bytes of its own: `next` returns the data it found as a view into the
// caller's input, so a body can be relayed without a copy.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace nines::core {

enum class chunked_problem : std::uint8_t {
  none,
  bad_size,          // not hex, too many digits, or white space after it
  bad_line_ending,   // a LF without CR, a CR without LF, or data not followed by CRLF
  bad_extension,     // a control byte in a chunk extension
  bad_trailer,       // a trailer field off the grammar
  meta_too_large,    // extensions and trailers over max_meta_bytes
  body_too_large,    // data over max_body_bytes
};

std::string_view describe(chunked_problem problem);

class chunked_decoder {
 public:
  chunked_decoder(std::size_t max_meta_bytes, std::uint64_t max_body_bytes)
      : max_meta_(max_meta_bytes), max_body_(max_body_bytes) {}

  struct step {
    std::size_t consumed = 0;  // bytes of `in` used (framing and data)
    std::string_view data;     // body bytes found, a view into `in` (may be empty)
  };

  // Decodes from the start of `in` up to the end of the first run of data (or of `in`). Call again
  // with what follows until `consumed` is 0 (more input needed), done() or failed().
  step next(std::string_view in);

  bool done() const { return state_ == state::done; }
  bool failed() const { return problem_ != chunked_problem::none; }
  chunked_problem problem() const { return problem_; }
  std::uint64_t body_bytes() const { return body_; }

 private:
  enum class state : std::uint8_t {
    size,           // hex digits of a chunk size
    extension,      // after ';' until CR
    size_lf,        // after the CR that ends a size line
    data,           // chunk data
    data_cr,        // the CR after chunk data
    data_lf,        // the LF after it
    trailer_start,  // the start of a trailer line (or of the final empty line)
    trailer_name,   // a trailer field name, until ':'
    trailer_value,  // after ':', until CR
    trailer_lf,     // after the CR of a trailer line
    final_lf,       // after the CR of the final empty line
    done,
  };
  bool fail(chunked_problem p) {
    problem_ = p;
    return false;
  }
  bool count_meta() { return ++meta_ <= max_meta_ || fail(chunked_problem::meta_too_large); }
  bool framing_byte(char c);  // one byte outside data; false on a problem

  std::size_t max_meta_;
  std::uint64_t max_body_;
  state state_ = state::size;
  chunked_problem problem_ = chunked_problem::none;
  std::uint64_t size_ = 0;       // of the chunk being read
  unsigned digits_ = 0;          // of its size
  std::uint64_t remaining_ = 0;  // data bytes left in this chunk
  std::uint64_t body_ = 0;       // data bytes so far
  std::size_t meta_ = 0;         // extension and trailer bytes so far
};

}  // namespace nines::core
