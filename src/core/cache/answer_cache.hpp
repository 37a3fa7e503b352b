#pragma once
// Answers to identical requests at temperature 0 (the answer cache; `[cache]` in docs/config.md),
// kept in memory: a least-recently-used list bounded in bytes, each answer for at most `ttl` after
// it was stored. What is kept is what the client was sent: the status, the response fields worth
// repeating, and the whole body (a JSON answer, or a stream's SSE events without their ids). With
// it, the request itself (core/cache/answer_key.hpp), which a lookup compares byte for byte, and
// the request's facts that its admission depends on (model, max tokens), so that a hit is
// admitted against the client key's limits as the request itself would be. A kept request's bytes
// count against max_bytes like its answer's.
//
// Thread-safety: one mutex; lookups and stores from any worker. Time is passed in.

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/cache/answer_key.hpp"
#include "core/json/json_probe.hpp"

namespace nines::core {

struct cached_answer {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> fields;  // response fields to send again
  bool stream = false;
  std::string body;  // a whole answer's body, or a stream's events (canonical SSE, no ids)
  std::optional<std::string> model;         // the request's "model"
  std::optional<std::uint64_t> max_tokens;  // the request's max tokens
  // The bytes this answer holds in the cache (its body, fields and bookkeeping).
  std::size_t cost() const;
};

// Whether a request's answer is the same each time it is asked, so that it may be kept: a JSON
// object whose top-level "temperature" is 0, given once. Without one a server samples (OpenAI's
// default is 1; vLLM's comes from the model's generation config).
bool answer_is_repeatable(const json_facts& facts);

struct answer_cache_settings {
  std::size_t max_bytes = 64u << 20;
  std::size_t max_entry_bytes = 8u << 20;
  std::chrono::milliseconds ttl{300000};
};

class answer_cache {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit answer_cache(answer_cache_settings settings) : settings_(settings) {}

  struct hit {
    std::shared_ptr<const cached_answer> answer;
    std::chrono::milliseconds age{0};  // since it was stored
  };
  // The answer to `request` (whose lookup key is `key`) that has not expired at `now`; it becomes
  // the most recently used. Only a kept request equal to `request` in every byte is found; when
  // `body_matches` is one of them (a candidate whose body the caller compared already), its body is
  // not compared again.
  std::optional<hit> lookup(std::uint64_t key, const answer_request_view& request, time_point now,
                            const answer_request* body_matches = nullptr);

  // The kept requests under `key` whose body is `body_length` long, at most `at_most`: what a
  // request with that head may turn out to be (its body compared with theirs as it arrives).
  std::vector<std::shared_ptr<const answer_request>> candidates(std::uint64_t key,
                                                                std::size_t body_length,
                                                                std::size_t at_most) const;

  enum class store_result { stored, too_large, stale };
  // Keeps `answer` to `request` under `key` (replacing an answer to the same request), making room
  // by dropping the least recently used answers, and the oldest under the same key past
  // `per_key` (requests of the same head and length are compared with each other). An answer
  // whose cost with its request is above max_entry_bytes is not kept; nor one generated before
  // the last clear(): `epoch` is epoch() when its request arrived.
  store_result store(std::uint64_t key, answer_request request, cached_answer answer,
                     time_point now, std::uint64_t epoch);
  // Counts clear()s: what a request notes when it arrives, for its store.
  std::uint64_t epoch() const;
  static constexpr std::size_t per_key = 64;

  // Drops the answers expired at `now` (a lookup drops an expired answer it finds; this frees the
  // room of those nobody asks for: called every few seconds). Oldest first, stopping at the first
  // that has not expired.
  void sweep(time_point now);
  // Drops every answer (a reload: the upstreams or the client keys may have changed).
  void clear();
  // An answer that was not offered because it outgrew max_entry_bytes while it was recorded.
  void count_too_large();

  struct stats {
    std::size_t entries = 0;
    std::size_t bytes = 0;
    std::uint64_t stored = 0;
    std::uint64_t evicted = 0;    // dropped for room
    std::uint64_t expired = 0;    // dropped after the ttl
    std::uint64_t too_large = 0;  // not kept: above max_entry_bytes
    std::uint64_t cleared = 0;    // dropped by clear() (a reload)
  };
  stats read_stats() const;
  const answer_cache_settings& settings() const { return settings_; }

 private:
  struct node;
  using list = std::list<node>;
  struct node {
    std::uint64_t key = 0;
    std::shared_ptr<const answer_request> request;
    std::shared_ptr<const cached_answer> answer;
    time_point stored_at;
    std::size_t cost = 0;
    std::list<list::iterator>::iterator by_age;  // its place in by_age_
  };
  // With the lock held: the node of an answer to `request`, or lru_.end().
  list::iterator find_locked(std::uint64_t key, const answer_request_view& request,
                             const answer_request* body_matches);
  void drop_locked(list::iterator it);
  void sweep_locked(time_point now);

  answer_cache_settings settings_;
  mutable std::mutex mutex_;
  list lru_;                          // most recently used first
  std::list<list::iterator> by_age_;  // oldest first (every answer has the same ttl)
  std::unordered_multimap<std::uint64_t, list::iterator> index_;  // by lookup key
  stats stats_;
  std::uint64_t epoch_ = 0;
};

}  // namespace nines::core
