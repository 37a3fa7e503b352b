#pragma once
// Client keys at the API listener (docs/config.md, [auth]): who is asking, may they use this
// model, and are they within their limits — checked before any upstream is contacted.
//
//   no or unknown key, or a malformed Authorization   401  invalid_api_key / missing_api_key
//   an expired key (or a rotated-out one past grace)   401  expired_api_key
//   a model the key does not allow                     403  model_not_allowed
//   over requests_per_minute or tokens_per_minute      429  rate_limit_exceeded, Retry-After
//   over max_concurrent                                429  concurrency_limit_exceeded
//
// 429s carry OpenAI's x-ratelimit-* headers. Tokens are reserved at admission (the request's
// max_tokens, or auth.default_token_reservation) and settled from the answer's usage when it
// ends.
//
// Pure (no I/O; times passed in). Threading: a registry is immutable once built and shared by
// every worker (the gateway publishes it atomically); a key's limit state is shared under that
// key's own lock; a ticket belongs to its request's thread.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/access/client_keys.hpp"
#include "core/access/rate_window.hpp"

namespace nines::core {

// One key's limits, shared by all workers and kept across reloads (by id).
struct key_state {
  std::mutex mutex;
  rate_window requests;  // guarded by mutex
  rate_window tokens;    // guarded by mutex
  std::atomic<unsigned> in_flight{0};
};

struct key_registry {
  client_keys keys;
  std::unordered_map<std::string, std::shared_ptr<key_state>> state;  // by key id
};

// The registry for `keys`, keeping the limit state of the ids `previous` had.
std::shared_ptr<const key_registry> build_key_registry(client_keys keys,
                                                       const key_registry* previous);

struct access_refusal {
  unsigned status = 401;
  std::string type;
  std::string code;
  std::string message;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string reason;  // for the refusals metric: missing, unknown, expired, model, rate, tokens, concurrency
};

// A request's place in its key's limits, for the request's life: it gives back its concurrency
// place and settles its reserved tokens when it ends.
class access_ticket {
 public:
  access_ticket() = default;
  access_ticket(const access_ticket&) = delete;
  access_ticket& operator=(const access_ticket&) = delete;
  ~access_ticket();

  const client_key* key() const { return key_; }
  // The tokens the request used (from its answer's usage, or what it produced); once.
  void settle_tokens(std::uint64_t used, std::chrono::steady_clock::time_point now);
  bool limits_tokens() const { return !settled_; }
  std::uint64_t reserved_tokens() const { return reserved_; }

  // Limits counted elsewhere too (auth.shared_limits): `settle` also gets the settlement's delta
  // (used minus reserved), once.
  void also_settle(std::function<void(std::int64_t delta)> settle) {
    also_settle_ = std::move(settle);
  }
  // Takes back what admit() counted in this replica's windows (the request is refused after all,
  // by the limits shared with other replicas); the ticket then limits nothing.
  void withdraw(std::chrono::steady_clock::time_point now);
  // What this replica's windows have counted for the key within the last minute, requests and
  // tokens (the local share when the shared count cannot be asked).
  std::pair<std::uint64_t, std::uint64_t> used_here(std::chrono::steady_clock::time_point now);

 private:
  friend std::optional<access_refusal> admit(std::shared_ptr<const key_registry>,
                                             std::string_view, std::optional<std::string_view>,
                                             std::uint64_t, wall_time,
                                             std::chrono::steady_clock::time_point,
                                             access_ticket&);
  std::shared_ptr<const key_registry> registry_;  // keeps key_ alive
  const client_key* key_ = nullptr;
  std::shared_ptr<key_state> state_;
  std::chrono::steady_clock::time_point admitted_at_{};
  std::uint64_t reserved_ = 0;
  bool settled_ = true;
  bool holds_place_ = false;
  std::function<void(std::int64_t)> also_settle_;
};

// A 429 for a key over a per-minute limit (`tokens`: its tokens_per_minute, else its
// requests_per_minute), with Retry-After and OpenAI's x-ratelimit-* headers from `remaining` and
// `reset`; `where` ends the message (" across replicas").
access_refusal per_minute_refusal(const client_key& k, bool tokens, std::uint64_t reserve,
                                  std::chrono::milliseconds retry, std::uint64_t remaining_requests,
                                  std::uint64_t remaining_tokens, std::string_view where);

// Who asks: nullopt when `authorization` names a usable key (then `key` is it), else the 401.
// Limits are not touched (a tus upload's requests are identified, not counted).
std::optional<access_refusal> identify(const key_registry& registry, std::string_view authorization,
                                       wall_time wall_now, const client_key*& key);

// Checks a request against the keys: nullopt when it may go on (then `ticket` holds its place).
// `model`: the body's model, when the route has one.
std::optional<access_refusal> admit(std::shared_ptr<const key_registry> registry,
                                    std::string_view authorization,
                                    std::optional<std::string_view> model,
                                    std::uint64_t token_estimate, wall_time wall_now,
                                    std::chrono::steady_clock::time_point now,
                                    access_ticket& ticket);

}  // namespace nines::core
