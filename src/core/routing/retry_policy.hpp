#pragma once
// Whether a failed attempt is worth another one, and after how long. Pure: the attempt loop in
// src/gateway asks these questions with the facts it observed; nothing here knows about sockets.

#include <chrono>
#include <optional>
#include <string_view>
#include <vector>

#include "core/routing/backoff.hpp"
#include "core/random.hpp"

namespace nines::core {

// What went wrong with one attempt, before any byte of its response reached the client.
enum class attempt_failure {
  none,
  connect_refused,
  connect_timeout,
  connect_error,      // resolution, unreachable, TLS handshake
  tls_error,          // certificate or handshake failure
  write_error,        // the request could not be sent
  reset,              // the upstream closed or reset before a usable response
  first_byte_timeout, // no response (or no first event of a stream) in time
  bad_response,       // unparseable HTTP or an unusable stream from the upstream
  retryable_status,   // 429, 502, 503, 504 (configurable)
  response_too_large, // a non-streamed response over the limit
  credential_rejected, // 401/403 to every credential tried on this upstream (or none usable)
  not_continuable,    // a broken stream cannot be continued on this upstream (its resume settings)
};

std::string_view to_string(attempt_failure failure);

struct retry_policy {
  unsigned max_attempts = 3;
  backoff_policy backoff{};
  std::vector<unsigned> retry_statuses{429, 502, 503, 504};
  bool honour_retry_after = true;
};

// True when `status` from an upstream is to be retried elsewhere rather than passed through.
bool is_retryable_status(const retry_policy& policy, unsigned status);

// True when the failure kind is worth another attempt at all.
bool is_retryable_failure(attempt_failure failure);

struct next_attempt {
  bool retry = false;
  std::chrono::milliseconds delay{0};
  std::string_view why_not;  // set when retry is false
};

// Decides the next step after attempt number `attempts_made` (1-based) failed with `failure`.
// `retry_after` is the upstream's Retry-After, honoured only when the next attempt goes back to the
// same upstream (`next_is_same_upstream`); it must fit in `time_left`, as must the backoff.
next_attempt plan_next_attempt(const retry_policy& policy, attempt_failure failure,
                               unsigned attempts_made, clock_duration time_left,
                               std::optional<std::chrono::milliseconds> retry_after,
                               bool next_is_same_upstream, rng& random);

// Parses a Retry-After value given in seconds ("120"). HTTP dates are not used by model servers
// and are ignored (nullopt), as are negative or absurd values (over one day).
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value);

}  // namespace nines::core
