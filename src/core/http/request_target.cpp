#include "core/http/request_target.hpp"

#include <fmt/format.h>

#include "core/http/ascii.hpp"

namespace nines::core {
namespace {

bool is_unreserved(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool is_sub_delim(char c) {
  switch (c) {
    case '!': case '$': case '&': case '\'': case '(': case ')': case '*': case '+': case ',':
    case ';': case '=':
      return true;
    default:
      return false;
  }
}

// pchar without pct-encoded (RFC 3986 §3.3): what a segment holds literally.
bool is_plain_pchar(char c) { return is_unreserved(c) || is_sub_delim(c) || c == ':' || c == '@'; }


// The byte at `s[i]` is '%': its decoded value, or -1 when two hex digits do not follow.
int decode_at(std::string_view s, std::size_t i) {
  if (i + 2 >= s.size()) {
    return -1;
  }
  const int hi = hex_value(s[i + 1]);
  const int lo = hex_value(s[i + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void append_encoded(std::string& out, unsigned char b) {
  if (is_plain_pchar(static_cast<char>(b))) {
    out.push_back(static_cast<char>(b));
    return;
  }
  static constexpr char digits[] = "0123456789ABCDEF";
  out.push_back('%');
  out.push_back(digits[b >> 4]);
  out.push_back(digits[b & 15]);
}

}  // namespace

std::string canonical_target::text() const {
  if (!has_query) {
    return path;
  }
  std::string t;
  t.reserve(path.size() + 1 + query.size());
  t.append(path).push_back('?');
  t.append(query);
  return t;
}

std::optional<std::string> check_request_target(std::string_view target, canonical_target& out) {
  out = canonical_target{};
  if (target.empty() || target.front() != '/') {
    return std::string("the request target must be a path starting with \"/\" (origin form); "
                       "absolute URLs, authorities and \"*\" are not accepted");
  }
  if (target.find('#') != std::string_view::npos) {
    return std::string("the request target must not have a fragment (#)");
  }
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  if (q != std::string_view::npos) {
    out.has_query = true;
    out.query = target.substr(q + 1);
  }

  out.path.reserve(path.size());
  std::string segment;  // decoded
  std::size_t start = 1;
  for (;;) {
    const auto slash = path.find('/', start);
    const std::string_view raw = path.substr(start, slash == std::string_view::npos
                                                        ? std::string_view::npos
                                                        : slash - start);
    const bool last = slash == std::string_view::npos;
    segment.clear();
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const char c = raw[i];
      if (c == '%') {
        const int b = decode_at(raw, i);
        if (b < 0) {
          return std::string("the path has a '%' not followed by two hex digits");
        }
        if (b == '/' || b == '\\') {
          return std::string("the path encodes a slash (%2F or %5C)");
        }
        if (b < 0x20 || b == 0x7f) {
          return std::string("the path encodes a control byte");
        }
        segment.push_back(static_cast<char>(b));
        i += 2;
      } else if (is_plain_pchar(c)) {
        segment.push_back(c);
      } else {
        return fmt::format("the path has a byte not allowed in a path: '{}'", c);
      }
    }
    // A dot segment, also with path parameters after it (`..;x`: servers that strip parameters,
    // Tomcat and Jetty among them, read it as `..`).
    const std::string_view name = std::string_view(segment).substr(0, segment.find(';'));
    if (name == "." || name == "..") {
      return std::string("the path has a dot segment (\".\" or \"..\", also when encoded or "
                         "followed by \";\")");
    }
    if (segment.empty() && !last) {
      return std::string("the path has an empty segment (\"//\")");
    }
    out.path.push_back('/');
    for (const char c : segment) {
      append_encoded(out.path, static_cast<unsigned char>(c));
    }
    if (last) {
      break;
    }
    start = slash + 1;
  }

  for (std::size_t i = 0; i < out.query.size(); ++i) {
    const char c = out.query[i];
    if (c == '%') {
      if (decode_at(out.query, i) < 0) {
        return std::string("the query has a '%' not followed by two hex digits");
      }
      i += 2;
    } else if (!is_plain_pchar(c) && c != '/' && c != '?') {
      return fmt::format("the query has a byte not allowed in a query: '{}'", c);
    }
  }
  return std::nullopt;
}

}  // namespace nines::core
