#include "core/http/chunked_decoder.hpp"

#include <algorithm>

#include "core/http/ascii.hpp"
#include "core/http/message_head.hpp"

namespace nines::core {
namespace {


// What a chunk extension or a trailer value may hold: HTAB, SP, VCHAR, obs-text.
bool is_text_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

}  // namespace

std::string_view describe(chunked_problem p) {
  switch (p) {
    case chunked_problem::none: return "no problem";
    case chunked_problem::bad_size: return "a chunk size is not 1 to 16 hex digits";
    case chunked_problem::bad_line_ending:
      return "a line of the chunked body does not end in CRLF";
    case chunked_problem::bad_extension: return "a chunk extension has a control byte";
    case chunked_problem::bad_trailer: return "a trailer field is malformed";
    case chunked_problem::meta_too_large:
      return "chunk extensions and trailers exceed their limit";
    case chunked_problem::body_too_large: return "the body exceeds its limit";
  }
  return "unknown problem";
}

bool chunked_decoder::framing_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  switch (state_) {
    case state::size: {
      const int h = hex_value(c);
      if (h >= 0) {
        if (++digits_ > 16) {
          return fail(chunked_problem::bad_size);
        }
        size_ = size_ * 16 + static_cast<std::uint64_t>(h);
        return true;
      }
      if (digits_ == 0) {
        return fail(chunked_problem::bad_size);
      }
      if (c == ';') {
        state_ = state::extension;
        return count_meta();
      }
      if (c == '\r') {
        state_ = state::size_lf;
        return true;
      }
      return fail(c == '\n' ? chunked_problem::bad_line_ending : chunked_problem::bad_size);
    }
    case state::extension:
      if (c == '\r') {
        state_ = state::size_lf;
        return true;
      }
      if (!is_text_byte(u)) {
        return fail(c == '\n' ? chunked_problem::bad_line_ending : chunked_problem::bad_extension);
      }
      return count_meta();
    case state::size_lf:
      if (c != '\n') {
        return fail(chunked_problem::bad_line_ending);
      }
      if (size_ == 0) {
        state_ = state::trailer_start;
        return true;
      }
      if (size_ > max_body_ - std::min(body_, max_body_)) {
        return fail(chunked_problem::body_too_large);
      }
      remaining_ = size_;
      state_ = state::data;
      return true;
    case state::data_cr:
      if (c != '\r') {
        return fail(chunked_problem::bad_line_ending);
      }
      state_ = state::data_lf;
      return true;
    case state::data_lf:
      if (c != '\n') {
        return fail(chunked_problem::bad_line_ending);
      }
      state_ = state::size;
      size_ = 0;
      digits_ = 0;
      return true;
    case state::trailer_start:
      if (c == '\r') {
        state_ = state::final_lf;
        return true;
      }
      if (!is_tchar(u)) {
        // A line starting with white space would be obs-fold; anything else is no field name.
        return fail(c == '\n' ? chunked_problem::bad_line_ending : chunked_problem::bad_trailer);
      }
      state_ = state::trailer_name;
      return count_meta();
    case state::trailer_name:
      if (c == ':') {
        state_ = state::trailer_value;
        return count_meta();
      }
      if (!is_tchar(u)) {
        return fail(c == '\n' ? chunked_problem::bad_line_ending : chunked_problem::bad_trailer);
      }
      return count_meta();
    case state::trailer_value:
      if (c == '\r') {
        state_ = state::trailer_lf;
        return true;
      }
      if (!is_text_byte(u)) {
        return fail(c == '\n' ? chunked_problem::bad_line_ending : chunked_problem::bad_trailer);
      }
      return count_meta();
    case state::trailer_lf:
      if (c != '\n') {
        return fail(chunked_problem::bad_line_ending);
      }
      state_ = state::trailer_start;
      return true;
    case state::final_lf:
      if (c != '\n') {
        return fail(chunked_problem::bad_line_ending);
      }
      state_ = state::done;
      return true;
    case state::data:
    case state::done:
      return true;
  }
  return true;
}

chunked_decoder::step chunked_decoder::next(std::string_view in) {
  step out;
  std::size_t i = 0;
  while (i < in.size() && state_ != state::done && problem_ == chunked_problem::none) {
    if (state_ == state::data) {
      const auto take = static_cast<std::size_t>(
          std::min<std::uint64_t>(remaining_, in.size() - i));
      out.data = in.substr(i, take);
      i += take;
      remaining_ -= take;
      body_ += take;
      if (remaining_ == 0) {
        state_ = state::data_cr;
      }
      break;  // one run of data per call: the caller takes it before the decoder goes on
    }
    if (!framing_byte(in[i])) {
      break;
    }
    ++i;
  }
  out.consumed = i;
  return out;
}

}  // namespace nines::core
