#include "core/access/admission.hpp"

#include <fmt/format.h>

namespace nines::core {
namespace {

using std::chrono::milliseconds;

// OpenAI's reset format: "1s", "6m0s", "250ms".
std::string reset_text(milliseconds d) {
  const auto ms = d.count();
  if (ms < 1000) {
    return fmt::format("{}ms", ms);
  }
  const auto s = (ms + 999) / 1000;
  return s < 60 ? fmt::format("{}s", s) : fmt::format("{}m{}s", s / 60, s % 60);
}

std::string retry_after(milliseconds d) { return std::to_string((d.count() + 999) / 1000); }

void add_limit_headers(access_refusal& r, key_state& s, const client_key& k,
                       std::chrono::steady_clock::time_point now) {
  if (k.requests_per_minute > 0) {
    r.headers.emplace_back("x-ratelimit-limit-requests", std::to_string(k.requests_per_minute));
    r.headers.emplace_back("x-ratelimit-remaining-requests",
                           std::to_string(s.requests.remaining(now)));
    r.headers.emplace_back("x-ratelimit-reset-requests", reset_text(s.requests.reset_in(now)));
  }
  if (k.tokens_per_minute > 0) {
    r.headers.emplace_back("x-ratelimit-limit-tokens", std::to_string(k.tokens_per_minute));
    r.headers.emplace_back("x-ratelimit-remaining-tokens", std::to_string(s.tokens.remaining(now)));
    r.headers.emplace_back("x-ratelimit-reset-tokens", reset_text(s.tokens.reset_in(now)));
  }
}

access_refusal unauthorized(std::string code, std::string message, std::string reason) {
  access_refusal r;
  r.status = 401;
  r.type = "invalid_request_error";
  r.code = std::move(code);
  r.message = std::move(message);
  r.reason = std::move(reason);
  r.headers.emplace_back("www-authenticate", "Bearer realm=\"nines\"");
  return r;
}

// A 429: over a limit of the key; the client may try again after `retry_after_seconds`.
access_refusal over_limit(std::string type, std::string code, std::string message,
                          std::string reason, std::string retry_after_seconds) {
  access_refusal r;
  r.status = 429;
  r.type = std::move(type);
  r.code = std::move(code);
  r.message = std::move(message);
  r.reason = std::move(reason);
  r.headers.emplace_back("retry-after", std::move(retry_after_seconds));
  return r;
}

}  // namespace

std::shared_ptr<const key_registry> build_key_registry(client_keys keys,
                                                       const key_registry* previous) {
  auto r = std::make_shared<key_registry>();
  for (const auto& k : keys.keys()) {
    std::shared_ptr<key_state> s;
    if (previous != nullptr) {
      if (auto it = previous->state.find(k.id); it != previous->state.end()) {
        s = it->second;  // its counts go on: a reload is not a way around a limit
      }
    }
    if (!s) {
      s = std::make_shared<key_state>();
    }
    {
      std::lock_guard lock(s->mutex);
      s->requests.set_limit(k.requests_per_minute);
      s->tokens.set_limit(k.tokens_per_minute);
    }
    r->state.emplace(k.id, std::move(s));
  }
  r->keys = std::move(keys);
  return r;
}

access_ticket::~access_ticket() {
  // Unsettled, the reservation stands as what the request used.
  if (state_ && holds_place_) {
    state_->in_flight.fetch_sub(1, std::memory_order_relaxed);
  }
}

void access_ticket::settle_tokens(std::uint64_t used, std::chrono::steady_clock::time_point now) {
  if (settled_ || !state_) {
    return;
  }
  settled_ = true;
  const auto delta = static_cast<std::int64_t>(used) - static_cast<std::int64_t>(reserved_);
  {
    std::lock_guard lock(state_->mutex);
    state_->tokens.settle(admitted_at_, delta, std::max(admitted_at_, now));
  }
  if (also_settle_ && delta != 0) {
    also_settle_(delta);
  }
}

void access_ticket::withdraw(std::chrono::steady_clock::time_point now) {
  if (!state_) {
    return;
  }
  {
    std::lock_guard lock(state_->mutex);
    state_->requests.settle(admitted_at_, -1, std::max(admitted_at_, now));
    if (reserved_ > 0) {
      state_->tokens.settle(admitted_at_, -static_cast<std::int64_t>(reserved_),
                            std::max(admitted_at_, now));
    }
  }
  settled_ = true;
  reserved_ = 0;
  also_settle_ = nullptr;
}

std::pair<std::uint64_t, std::uint64_t> access_ticket::used_here(
    std::chrono::steady_clock::time_point now) {
  if (!state_) {
    return {0, 0};
  }
  std::lock_guard lock(state_->mutex);
  return {state_->requests.used(now), state_->tokens.used(now)};
}

access_refusal per_minute_refusal(const client_key& k, bool tokens, std::uint64_t reserve,
                                  std::chrono::milliseconds retry, std::uint64_t remaining_requests,
                                  std::uint64_t remaining_tokens, std::string_view where) {
  auto r = tokens ? over_limit("tokens", "rate_limit_exceeded",
                               fmt::format("key \"{}\" is over its {} tokens per minute{} ({} "
                                           "reserved for this request)",
                                           k.id, k.tokens_per_minute, where, reserve),
                               "tokens", retry_after(retry))
                  : over_limit("requests", "rate_limit_exceeded",
                               fmt::format("key \"{}\" is over its {} requests per minute{}", k.id,
                                           k.requests_per_minute, where),
                               "rate", retry_after(retry));
  if (k.requests_per_minute > 0) {
    r.headers.emplace_back("x-ratelimit-limit-requests", std::to_string(k.requests_per_minute));
    r.headers.emplace_back("x-ratelimit-remaining-requests", std::to_string(remaining_requests));
    r.headers.emplace_back("x-ratelimit-reset-requests", reset_text(retry));
  }
  if (k.tokens_per_minute > 0) {
    r.headers.emplace_back("x-ratelimit-limit-tokens", std::to_string(k.tokens_per_minute));
    r.headers.emplace_back("x-ratelimit-remaining-tokens", std::to_string(remaining_tokens));
    r.headers.emplace_back("x-ratelimit-reset-tokens", reset_text(retry));
  }
  return r;
}

std::optional<access_refusal> identify(const key_registry& registry, std::string_view authorization,
                                       wall_time wall_now, const client_key*& key) {
  const auto m = registry.keys.find(authorization, wall_now);
  switch (m.result) {
    case client_keys::verdict::missing:
      return unauthorized("missing_api_key",
                          "no API key: send it as \"Authorization: Bearer <key>\"", "missing");
    case client_keys::verdict::malformed:
      return unauthorized("invalid_api_key",
                          "the Authorization header must be \"Bearer <key>\"", "unknown");
    case client_keys::verdict::unknown:
      return unauthorized("invalid_api_key", "the API key is not known here", "unknown");
    case client_keys::verdict::expired:
      return unauthorized("expired_api_key",
                          m.by_previous ? "this key was rotated and its grace period is over: "
                                          "use the new one"
                                        : "the API key has expired",
                          "expired");
    case client_keys::verdict::ok:
      break;
  }
  key = m.key;
  return std::nullopt;
}

std::optional<access_refusal> admit(std::shared_ptr<const key_registry> registry,
                                    std::string_view authorization,
                                    std::optional<std::string_view> model,
                                    std::uint64_t token_estimate, wall_time wall_now,
                                    std::chrono::steady_clock::time_point now,
                                    access_ticket& ticket) {
  const client_key* key = nullptr;
  if (auto refused = identify(*registry, authorization, wall_now, key)) {
    return refused;
  }
  const client_key& k = *key;
  if (model && !model_allowed(k, *model)) {
    access_refusal r;
    r.status = 403;
    r.type = "permission_error";
    r.code = "model_not_allowed";
    r.message = fmt::format("key \"{}\" may not use model \"{}\"", k.id, *model);
    r.reason = "model";
    return r;
  }
  const auto state = registry->state.at(k.id);
  if (k.max_concurrent > 0) {
    const auto before = state->in_flight.fetch_add(1, std::memory_order_relaxed);
    if (before >= k.max_concurrent) {
      state->in_flight.fetch_sub(1, std::memory_order_relaxed);
      return over_limit("requests", "concurrency_limit_exceeded",
                        fmt::format("key \"{}\" has {} requests in flight, its max_concurrent",
                                    k.id, k.max_concurrent),
                        "concurrency", "1");
    }
  } else {
    state->in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  ticket.holds_place_ = true;
  ticket.state_ = state;  // from here the ticket gives the place back, refused or not
  ticket.registry_ = std::move(registry);
  ticket.key_ = &k;
  std::lock_guard lock(state->mutex);
  // Requests first: a request refused for its tokens must not spend a request either.
  const auto requests_wait = state->requests.admit(1, now);
  if (requests_wait) {
    auto r = over_limit("requests", "rate_limit_exceeded",
                        fmt::format("key \"{}\" is over its {} requests per minute", k.id,
                                    k.requests_per_minute),
                        "rate", retry_after(*requests_wait));
    add_limit_headers(r, *state, k, now);
    return r;
  }
  const std::uint64_t reserve = k.tokens_per_minute > 0 ? token_estimate : 0;
  if (const auto tokens_wait = state->tokens.admit(reserve, now)) {
    state->requests.settle(now, -1, now);  // not sent after all
    auto r = over_limit("tokens", "rate_limit_exceeded",
                        fmt::format("key \"{}\" is over its {} tokens per minute ({} reserved "
                                    "for this request)",
                                    k.id, k.tokens_per_minute, reserve),
                        "tokens", retry_after(*tokens_wait));
    add_limit_headers(r, *state, k, now);
    return r;
  }
  ticket.admitted_at_ = now;
  ticket.reserved_ = reserve;
  ticket.settled_ = reserve == 0;
  return std::nullopt;
}

}  // namespace nines::core
