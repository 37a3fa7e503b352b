#pragma once
// What a request's Cache-Control (and HTTP/1.0's Pragma) asks of a cache (RFC 9111 §5.2.1):
// `no-store` — do not keep this answer, and do not answer from what is kept; `no-cache` (or
// `max-age=0`) — do not answer from what is kept, but the fresh answer may be kept; `max-age=N` —
// only what was kept at most N seconds ago; `only-if-cached` — what is kept, or nothing (504).
// A response's own `no-store` is read the same way. Directives are case-insensitive and
// comma-separated, across every field line; others are ignored.

#include <cstdint>
#include <optional>
#include <string_view>

namespace nines::core {

struct cache_directives {
  bool no_store = false;
  bool no_cache = false;
  std::optional<std::uint64_t> max_age;  // seconds (above 0: 0 is no_cache)
  bool only_if_cached = false;
};

// Adds one Cache-Control field value's directives to `out`.
void read_cache_control(std::string_view value, cache_directives& out);
// Adds one Pragma field value's (`no-cache` only).
void read_pragma(std::string_view value, cache_directives& out);

// Whether a (response's) Cache-Control value says no-store.
inline bool says_no_store(std::string_view cache_control) {
  cache_directives d;
  read_cache_control(cache_control, d);
  return d.no_store;
}

}  // namespace nines::core
