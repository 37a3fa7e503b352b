#include "core/cache/cache_control.hpp"

#include <algorithm>

#include "core/http/ascii.hpp"

namespace nines::core {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls `each(name, value)` for the directives of a comma-separated list (value: "" when none;
// a quoted value keeps its quotes: only max-age's token form is read).
template <class Each>
void directives(std::string_view list, Each each) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto item = trim(list.substr(0, comma));
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    const auto eq = item.find('=');
    each(trim(item.substr(0, eq)),
         eq == std::string_view::npos ? std::string_view{} : trim(item.substr(eq + 1)));
  }
}

// "0", "00", "\"0\"": a max-age of zero seconds.
bool is_zero(std::string_view arg) {
  if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') {
    arg = arg.substr(1, arg.size() - 2);
  }
  return !arg.empty() && arg.find_first_not_of('0') == std::string_view::npos;
}

// Delta-seconds (RFC 9111 §1.2.2), quoted or not; larger than 2^31 reads as 2^31.
std::optional<std::uint64_t> seconds_of(std::string_view arg) {
  if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') {
    arg = arg.substr(1, arg.size() - 2);
  }
  if (arg.empty() || arg.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  for (const char c : arg) {
    n = std::min<std::uint64_t>(n * 10 + static_cast<std::uint64_t>(c - '0'), 1ull << 31);
  }
  return n;
}

}  // namespace

void read_cache_control(std::string_view value, cache_directives& out) {
  directives(value, [&](std::string_view name, std::string_view arg) {
    if (iequals(name, "no-store")) {
      out.no_store = true;
    } else if (iequals(name, "no-cache")) {
      out.no_cache = true;
    } else if (iequals(name, "max-age") && is_zero(arg)) {
      out.no_cache = true;  // nothing kept is young enough
    } else if (iequals(name, "max-age")) {
      if (const auto n = seconds_of(arg)) {
        out.max_age = out.max_age ? std::min(*out.max_age, *n) : *n;  // the strictest
      }
    } else if (iequals(name, "only-if-cached")) {
      out.only_if_cached = true;
    }
  });
}

void read_pragma(std::string_view value, cache_directives& out) {
  directives(value, [&](std::string_view name, std::string_view) {
    if (iequals(name, "no-cache")) {
      out.no_cache = true;
    }
  });
}

}  // namespace nines::core
