#pragma once
// Client keys' per-minute limits counted across every replica (auth.shared_limits), in the Redis
// of the shared journal (core/redis/redis_limit_layout.hpp holds the layout and the scripts).
//
// A request first passes this replica's own windows (core/access/admission.hpp: they count what
// it admits, so no replica alone ever goes past a limit), then the shared count: from the
// allowance this replica holds for the key, when it has enough (no Redis call), else by one
// script call that takes what the request needs and, when the key is busy here, allowance for the
// next ones (doubling while requests keep coming within a second, at most a fiftieth of the
// limit). Allowance not used within a second is given back, as is a token reservation's unused
// part once the answer's usage is known.
//
// Redis away, slow (100 ms) or answering nonsense: `auth.shared_limits` (or the key's own
// `when_limits_store_away`) says what happens: "open"
// admits (each replica still within the whole limit), "closed" refuses (503
// rate_limit_store_unavailable), "local-share" admits while this replica's own last minute holds
// at most its share, the limit divided by the replicas alive (each says so every second in Redis;
// the last count seen is kept while Redis is away).
//
// Threading: one limit_caller per worker, on that worker's thread (its connection, its queue);
// the allowances and the replica count are the process's, behind a mutex and an atomic.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/access/admission.hpp"
#include "core/config/config.hpp"
#include "core/redis/redis_reply.hpp"
#include "net/asio.hpp"
#include "net/redis_connection.hpp"

namespace nines::obs {
class registry;
}

namespace nines::gateway {

class journal_store;

// One worker's calls to the Redis primary: queued, sent as one pipeline on one connection.
class limit_caller {
 public:
  limit_caller(net::asio::any_io_executor executor, journal_store& store);
  // The reply to `words` within `within`; nullopt when Redis is away, slow or broke off. A reply
  // that comes after the caller stopped waiting goes to `late` (a grant given back).
  net::awaitable<std::optional<core::redis_reply>> call(
      std::vector<std::string> words, std::chrono::milliseconds within,
      std::function<void(const core::redis_reply&)> late = {});
  // The same, nobody waiting for the answer (a give-back, a settlement).
  void send(std::vector<std::string> words);

 private:
  struct pending;
  void enqueue(std::shared_ptr<pending> p);
  net::awaitable<void> run();

  net::asio::any_io_executor executor_;
  journal_store& store_;
  std::deque<std::shared_ptr<pending>> queue_;
  net::asio::steady_timer wake_;
  std::unique_ptr<net::redis_connection> conn_;
  bool running_ = false;
  std::chrono::steady_clock::time_point away_until_{};  // after a failed connect
};

class shared_limits {
 public:
  shared_limits(core::shared_limits_mode mode, journal_store& store, obs::registry& metrics);

  // The shared count's word on a request this replica admitted (`ticket`): nullopt to go on, else
  // the refusal, the ticket's local counts withdrawn.
  net::awaitable<std::optional<core::access_refusal>> admit(limit_caller& caller,
                                                            core::access_ticket& ticket);

  // Every second, from one worker: says this replica lives, and gives back stale allowance.
  net::awaitable<void> keep(limit_caller& caller, const std::atomic<bool>& stopping);

  std::uint64_t live_replicas() const { return live_.load(std::memory_order_relaxed); }

 private:
  struct allowance {
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
    std::int64_t second = 0;                          // Redis's, where it was counted
    std::chrono::steady_clock::time_point granted{};  // here
    std::uint64_t extra = 0;                          // requests of allowance asked for next
  };
  std::optional<core::access_refusal> fallback(core::access_ticket& ticket,
                                               std::chrono::steady_clock::time_point now);
  void give_back(limit_caller& caller, const std::string& key_id, const allowance& a);

  core::shared_limits_mode mode_;
  journal_store& store_;
  std::mutex mutex_;
  std::unordered_map<std::string, allowance> allowances_;  // by key id; guarded by mutex_
  std::atomic<std::uint64_t> live_{1};
  std::atomic<std::uint64_t> from_allowance_{0};
  std::atomic<std::uint64_t> from_redis_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> store_away_{0};
};

}  // namespace nines::gateway
