#include "core/routing/retry_policy.hpp"

#include <algorithm>
#include <charconv>

namespace nines::core {

std::string_view to_string(attempt_failure failure) {
  switch (failure) {
    case attempt_failure::none: return "none";
    case attempt_failure::connect_refused: return "connect_refused";
    case attempt_failure::connect_timeout: return "connect_timeout";
    case attempt_failure::connect_error: return "connect_error";
    case attempt_failure::tls_error: return "tls_error";
    case attempt_failure::write_error: return "write_error";
    case attempt_failure::reset: return "reset";
    case attempt_failure::first_byte_timeout: return "first_byte_timeout";
    case attempt_failure::bad_response: return "bad_response";
    case attempt_failure::retryable_status: return "retryable_status";
    case attempt_failure::response_too_large: return "response_too_large";
    case attempt_failure::credential_rejected: return "credential_rejected";
    case attempt_failure::not_continuable: return "not_continuable";
  }
  return "unknown";
}

bool is_retryable_status(const retry_policy& policy, unsigned status) {
  return std::find(policy.retry_statuses.begin(), policy.retry_statuses.end(), status) !=
         policy.retry_statuses.end();
}

bool is_retryable_failure(attempt_failure failure) {
  switch (failure) {
    case attempt_failure::none:
    // A response over our own limit would be over it on every upstream.
    case attempt_failure::response_too_large: return false;
    default: return true;
  }
}

next_attempt plan_next_attempt(const retry_policy& policy, attempt_failure failure,
                               unsigned attempts_made, clock_duration time_left,
                               std::optional<std::chrono::milliseconds> retry_after,
                               bool next_is_same_upstream, rng& random) {
  if (!is_retryable_failure(failure)) {
    return {false, {}, "not retryable"};
  }
  if (attempts_made >= policy.max_attempts) {
    return {false, {}, "attempts exhausted"};
  }
  auto delay = full_jitter_delay(policy.backoff, attempts_made - 1, random);
  if (retry_after && policy.honour_retry_after && next_is_same_upstream) {
    delay = std::max(delay, *retry_after);
  }
  if (time_left <= clock_duration::zero() || delay >= time_left) {
    return {false, {}, "deadline"};
  }
  return {true, delay, {}};
}

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  std::int64_t seconds = 0;
  const auto* end = value.data() + value.size();
  auto [ptr, ec] = std::from_chars(value.data(), end, seconds);
  if (value.empty() || ec != std::errc() || ptr != end || seconds < 0 || seconds > 86400) {
    return std::nullopt;
  }
  return std::chrono::milliseconds(seconds * 1000);
}

}  // namespace nines::core
