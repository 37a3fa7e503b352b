#pragma once
// Client keys: who may use the gateway, for which models, and how much. Read from the keys file
// (`[auth] keys_file`, TOML, `[[keys]]` tables; docs/config.md), which holds only digests of the
// secrets, never the secrets themselves. A client presents its secret as
// `Authorization: Bearer <secret>` (what every OpenAI SDK sends as its API key); the gateway
// hashes it and finds the key whose digest matches, compared in constant time. A key being
// rotated has its previous digest beside the new one until `previous_expires`: both work in that
// grace window, then only the new one does.
//
// Pure: parsing and lookup; time is passed in. Limits are enforced by core/access/rate_window.hpp.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/access/secret_digest.hpp"
#include "core/config/config_problem.hpp"

namespace nines::core {

using wall_time = std::chrono::system_clock::time_point;

// What a key's shared limits do while their Redis is away (auth.shared_limits; docs/config.md).
enum class limits_store_away : std::uint8_t { as_configured, open, closed, local_share };

struct client_key {
  std::string id;  // stable, shown in logs and metrics (never the secret)
  secret_digest hash{};
  std::optional<wall_time> expires;
  std::optional<secret_digest> previous_hash;  // accepted until previous_expires
  std::optional<wall_time> previous_expires;
  std::vector<std::string> models;  // glob patterns ('*', '?'); empty: no model
  std::uint64_t requests_per_minute = 0;  // 0: no limit
  std::uint64_t tokens_per_minute = 0;    // prompt + completion; 0: no limit
  unsigned max_concurrent = 0;            // requests in flight; 0: no limit
  bool allow_hedge = false;               // may ask for hedging with x-nines-hedge
  bool allow_journal = false;             // may journal with Idempotency-Key etc.
  limits_store_away when_store_away = limits_store_away::as_configured;
};

class client_keys {
 public:
  client_keys() = default;
  explicit client_keys(std::vector<client_key> keys);

  enum class verdict : std::uint8_t { ok, missing, malformed, unknown, expired };
  struct match {
    verdict result = verdict::missing;
    const client_key* key = nullptr;  // set for ok and expired
    bool by_previous = false;         // the rotated-out secret, within its grace window
  };
  // `authorization`: the header's value, empty when absent.
  match find(std::string_view authorization, wall_time now) const;

  const std::vector<client_key>& keys() const { return keys_; }

 private:
  std::vector<client_key> keys_;
  // By the first 8 bytes of a digest (current or previous) to an index; then compared in full.
  std::unordered_multimap<std::uint64_t, std::size_t> by_digest_;
};

// Whether `model` matches one of the key's patterns ('*' any run of characters, '?' one).
bool model_allowed(const client_key& key, std::string_view model);
bool glob_matches(std::string_view pattern, std::string_view text);

struct client_keys_result {
  std::optional<client_keys> value;  // set when problems is empty
  std::vector<config_problem> problems;
};

// Reads a keys file; `source` names it in problems. Expired keys are kept (and refused with a
// clear 401 when used), so that a client learns why.
client_keys_result parse_client_keys(std::string_view toml_text, std::string_view source);

// The TOML entry for a new key (what `nines keys new` prints).
std::string client_key_entry(const std::string& id, const secret_digest& hash,
                             const std::vector<std::string>& models);

}  // namespace nines::core
