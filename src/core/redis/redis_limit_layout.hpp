#pragma once
// A client key's per-minute limits shared by every gateway replica (docs/config.md,
// auth.shared_limits): what they look like in Redis and the scripts that take from and give back
// to them. No I/O here.
//
//   nines:l:{ID}:r   a hash: field S (a second of Redis's clock) -> requests counted in it
//   nines:l:{ID}:t   the same for tokens
//   nines:l:replicas a sorted set: replica id -> when it last said it lives (ms, Redis's clock)
//
// ID is the key's id (1-64 of A-Z a-z 0-9 . _ -: nothing a key name could be confused by), the
// same on every replica. The window is the local one's (core/access/rate_window.hpp): the last 60
// seconds in one-second steps, no burst on top, and Redis's clock is the only one that counts, so
// replicas whose clocks disagree still share one window.
//
// A replica takes what a request needs, and maybe some allowance beyond it for the requests that
// follow (`extra`), in one call (limit_take_script): all or nothing across both limits. What it
// did not use it gives back (limit_settle_script, also a token reservation settled from usage).
// Every answer read back is checked: a Redis that says something else is a Redis that is away.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/redis/redis_reply.hpp"

namespace nines::core {

struct redis_limit_keys {
  std::string requests;
  std::string tokens;
};
redis_limit_keys redis_limit_keys_for(std::string_view key_id);
std::string_view redis_replicas_key();

// One take: for each limit (0: none), what the request needs and what more to take if there is.
struct limit_take {
  std::uint64_t request_limit = 0;
  std::uint64_t requests = 0;
  std::uint64_t extra_requests = 0;
  std::uint64_t token_limit = 0;
  std::uint64_t tokens = 0;
  std::uint64_t extra_tokens = 0;
};
std::vector<std::string> limit_take_command(const redis_limit_keys& keys, const limit_take& t);

struct limit_grant {
  bool admitted = false;
  std::int64_t second = 0;     // Redis's second the grant was counted in
  std::uint64_t requests = 0;  // granted (the need and the extra taken), when admitted
  std::uint64_t tokens = 0;
  bool refused_for_tokens = false;  // when refused: which limit (else the requests one)
  std::uint64_t reset_ms = 0;       // when refused: until enough may have left the window
  std::uint64_t requests_left = 0;  // what the window still holds after this call
  std::uint64_t tokens_left = 0;
};
// nullopt: not the script's answer, or one that does not fit what was asked.
std::optional<limit_grant> parse_limit_grant(const redis_reply& reply, const limit_take& asked);

// Corrects what was counted in `second` by `delta` (negative: given back; never below zero).
std::vector<std::string> limit_settle_command(std::string_view key, std::int64_t second,
                                              std::int64_t delta);

// This replica lives; the answer is how many replicas said so within `alive_ms`.
std::vector<std::string> replica_beat_command(std::string_view replica_id, std::uint64_t alive_ms);
std::optional<std::uint64_t> parse_live_replicas(const redis_reply& reply);

std::string_view limit_take_script();
std::string_view limit_settle_script();

}  // namespace nines::core
