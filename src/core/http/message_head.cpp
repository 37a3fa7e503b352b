#include "core/http/message_head.hpp"

#include <algorithm>

namespace nines::core {
namespace {

// field-vchar, SP, HTAB and obs-text: what a field value may hold (RFC 9110 §5.5).
bool is_value_byte(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

// "HTTP/1.1" -> 11. Digits other than 1.0 / 1.1 are a version we do not speak.
head_problem read_version(std::string_view v, unsigned& out) {
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !is_digit(v[5]) || v[6] != '.' ||
      !is_digit(v[7])) {
    return head_problem::bad_version;
  }
  if (v[5] != '1' || (v[7] != '0' && v[7] != '1')) {
    return head_problem::unsupported_version;
  }
  out = v[7] == '1' ? 11 : 10;
  return head_problem::none;
}

// The field lines after the start line: `rest` starts just after the start line's CRLF and ends
// with the head's final CRLF.
head_problem read_fields(std::string_view rest, std::size_t max_fields,
                         std::vector<header_field>& out) {
  out.clear();
  while (!rest.empty()) {
    const auto eol = rest.find("\r\n");
    if (eol == std::string_view::npos) {
      return head_problem::bare_line_ending;  // the scanner guarantees CRLF; be safe anyway
    }
    const std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    if (line.empty()) {
      return rest.empty() ? head_problem::none : head_problem::bad_field_name;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      return head_problem::obs_fold;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return head_problem::bad_field_name;
    }
    const std::string_view name = line.substr(0, colon);
    if (!is_token(name)) {
      return head_problem::bad_field_name;  // includes white space before the colon
    }
    std::string_view value = line.substr(colon + 1);
    for (const char c : value) {
      if (!is_value_byte(static_cast<unsigned char>(c))) {
        return head_problem::bad_field_value;
      }
    }
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
      value.remove_suffix(1);
    }
    if (out.size() >= max_fields) {
      return head_problem::too_many_fields;
    }
    out.push_back({name, value});
  }
  return head_problem::bad_field_name;  // no final empty line
}

}  // namespace

std::string_view describe(head_problem p) {
  switch (p) {
    case head_problem::none: return "no problem";
    case head_problem::too_large: return "the header is larger than allowed";
    case head_problem::too_many_fields: return "the header has more fields than allowed";
    case head_problem::bare_line_ending:
      return "the header has a line that does not end in CRLF (a bare LF or CR)";
    case head_problem::bad_start_line: return "the first line is not of the HTTP grammar";
    case head_problem::bad_method: return "the method is not a token";
    case head_problem::bad_target: return "the request target has a byte outside visible ASCII";
    case head_problem::bad_version: return "the HTTP version is malformed";
    case head_problem::unsupported_version: return "only HTTP/1.0 and HTTP/1.1 are spoken here";
    case head_problem::bad_status: return "the status code is not three digits from 100 to 599";
    case head_problem::obs_fold:
      return "a header field is folded onto a continuation line (obs-fold is not accepted)";
    case head_problem::bad_field_name:
      return "a header field name is empty, has a byte outside token characters, or white space "
             "before its colon";
    case head_problem::bad_field_value:
      return "a header field value has a control byte (NUL, CR, LF, ...)";
  }
  return "unknown problem";
}

std::size_t head_scanner::scan(std::string_view bytes, head_problem& problem) {
  problem = head_problem::none;
  const std::size_t limit = std::min(bytes.size(), max_bytes_);
  std::size_t i = checked_;
  for (; i < limit; ++i) {
    const char c = bytes[i];
    if (c == '\r') {
      if (i + 1 >= bytes.size()) {
        break;  // decide about this CR when the byte after it is here
      }
      if (bytes[i + 1] != '\n') {
        problem = head_problem::bare_line_ending;
        return 0;
      }
    } else if (c == '\n') {
      if (i == 0 || bytes[i - 1] != '\r') {
        problem = head_problem::bare_line_ending;
        return 0;
      }
      if (i >= 3 && bytes[i - 2] == '\n' && bytes[i - 3] == '\r') {
        checked_ = 0;
        return i + 1;
      }
    }
  }
  checked_ = i;
  if (bytes.size() >= max_bytes_) {
    problem = head_problem::too_large;
  }
  return 0;
}

head_problem parse_request_head(std::string_view head, std::size_t max_fields,
                                request_head& out) {
  const auto eol = head.find("\r\n");
  if (eol == std::string_view::npos || eol == 0) {
    return head_problem::bad_start_line;
  }
  const std::string_view line = head.substr(0, eol);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
    return head_problem::bad_start_line;  // exactly two single spaces
  }
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!is_token(out.method)) {
    return out.method.empty() ? head_problem::bad_start_line : head_problem::bad_method;
  }
  if (out.target.empty()) {
    return head_problem::bad_start_line;
  }
  for (const char c : out.target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return head_problem::bad_target;
    }
  }
  if (const auto v = read_version(line.substr(sp2 + 1), out.version); v != head_problem::none) {
    return v;
  }
  return read_fields(head.substr(eol + 2), max_fields, out.fields);
}

head_problem parse_response_head(std::string_view head, std::size_t max_fields,
                                 response_head& out) {
  const auto eol = head.find("\r\n");
  if (eol == std::string_view::npos || eol < 12) {
    return head_problem::bad_start_line;
  }
  const std::string_view line = head.substr(0, eol);
  if (line[8] != ' ') {
    return head_problem::bad_start_line;
  }
  if (const auto v = read_version(line.substr(0, 8), out.version); v != head_problem::none) {
    return v;
  }
  const std::string_view code = line.substr(9, 3);
  if (!is_digit(code[0]) || !is_digit(code[1]) || !is_digit(code[2])) {
    return head_problem::bad_status;
  }
  out.status = static_cast<unsigned>((code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0'));
  if (out.status < 100 || out.status > 599) {
    return head_problem::bad_status;
  }
  // "HTTP/1.1 200 OK", or "HTTP/1.1 200" with the reason (and its space) left out, which some
  // servers send; nothing is ambiguous about it.
  if (line.size() > 12) {
    if (line[12] != ' ') {
      return head_problem::bad_status;
    }
    out.reason = line.substr(13);
    for (const char c : out.reason) {
      if (!is_value_byte(static_cast<unsigned char>(c))) {
        return head_problem::bad_start_line;
      }
    }
  } else {
    out.reason = {};
  }
  return read_fields(head.substr(eol + 2), max_fields, out.fields);
}

std::string_view field_value(const std::vector<header_field>& fields, std::string_view name,
                             std::size_t& count) {
  count = 0;
  std::string_view value;
  for (const auto& f : fields) {
    if (iequals(f.name, name)) {
      if (count++ == 0) {
        value = f.value;
      }
    }
  }
  return value;
}

}  // namespace nines::core
