#include "core/obs/trace_context.hpp"

#include <algorithm>

namespace nines::core {
namespace {

bool lower_hex(std::string_view s, std::size_t length) {
  return s.size() == length && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

std::string random_hex(rng& random, std::size_t digits) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(digits, '0');
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    if (i % 16 == 0) {
      bits = random.next();
    }
    out[i] = hex[bits >> 60];
    bits <<= 4;
  }
  if (all_zero(out)) {
    out.back() = '1';  // an all-zero id is invalid
  }
  return out;
}

}  // namespace

void append_traceparent(std::string& out, std::string_view trace_id, std::string_view span_id,
                        std::uint8_t flags) {
  static constexpr char hex[] = "0123456789abcdef";
  out.append("00-").append(trace_id).push_back('-');
  out.append(span_id).push_back('-');
  out.push_back(hex[flags >> 4]);
  out.push_back(hex[flags & 0xf]);
}

std::string trace_context::traceparent() const {
  std::string out;
  append_traceparent(out, trace_id, span_id, flags);
  return out;
}

std::optional<trace_context> parse_traceparent(std::string_view h) {
  // Leading and trailing spaces are tolerated; the value itself is exact.
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) {
    h.remove_prefix(1);
  }
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) {
    h.remove_suffix(1);
  }
  if (h.size() != 55 || h[2] != '-' || h[35] != '-' || h[52] != '-') {
    return std::nullopt;
  }
  const auto version = h.substr(0, 2);
  const auto trace = h.substr(3, 32);
  const auto parent = h.substr(36, 16);
  const auto flags = h.substr(53, 2);
  if (version != "00" || !lower_hex(trace, 32) || !lower_hex(parent, 16) || !lower_hex(flags, 2) ||
      all_zero(trace) || all_zero(parent)) {
    return std::nullopt;
  }
  trace_context t;
  t.trace_id = std::string(trace);
  t.parent_id = std::string(parent);
  t.flags = static_cast<std::uint8_t>(std::stoul(std::string(flags), nullptr, 16));
  return t;
}

trace_context continue_trace(std::string_view incoming, rng& random) {
  auto t = parse_traceparent(incoming).value_or(trace_context{});
  if (t.trace_id.empty()) {
    t.trace_id = random_hex(random, 32);
    t.flags = 1;
  }
  t.span_id = random_hex(random, 16);
  return t;
}

}  // namespace nines::core
