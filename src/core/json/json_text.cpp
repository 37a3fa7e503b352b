#include "core/json/json_text.hpp"

namespace nines::core {

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (c < 0x20) {
          out.append("\\u00");
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace nines::core

#include <boost/json/value.hpp>
#include <cmath>

namespace nines::core {

std::string_view utf8_prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) {
    return text;
  }
  std::size_t end = max;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) {
    --end;  // text[end] continues a character: cut before that character starts
  }
  return text.substr(0, end);
}

bool has_non_finite_number(const boost::json::value& v) {
  if (const auto* d = v.if_double()) {
    return !std::isfinite(*d);
  }
  if (const auto* o = v.if_object()) {
    for (const auto& [k, item] : *o) {
      if (has_non_finite_number(item)) {
        return true;
      }
    }
  } else if (const auto* a = v.if_array()) {
    for (const auto& item : *a) {
      if (has_non_finite_number(item)) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace nines::core
