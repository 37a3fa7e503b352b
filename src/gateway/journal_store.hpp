#pragma once
// The shared journal's writer and the door to it ([journal] store, docs/scale-out.md): every
// journaled answer this replica produces is copied to Redis (core/redis/redis_journal_layout.hpp)
// so that a client reconnecting with Last-Event-ID to another replica reads it there
// (gateway/journal_store_relay.hpp).
//
// Redis is never on the byte path. A producer hands its writes to queue() and goes on; a thread
// of the store's own batches what is queued into one pipeline of script calls per round trip.
// While Redis is away the queue holds up to journal.store_queue_bytes; past that an answer's
// queued events are dropped and its copy marked incomplete (a reconnect elsewhere gets a clear
// error, never a silent gap), and the answer itself goes on from this replica's memory as before.
// A failed pipeline is sent again after the reconnect (the script skips what is already there).
// The connection is re-made with backoff (100 ms doubling to 2 s, with jitter); with Sentinels
// the primary is found again and checked with ROLE after every reconnect, and a READONLY or
// NOSCRIPT answer (a primary demoted, a new primary without the script) also makes it reconnect.
//
// Every answer it writes and that has not ended is leased to this replica in Redis
// (journal.store_lease_ms, core/redis/redis_journal_layout.hpp): every write renews the lease, and
// every third of it the writer renews the leases of answers that had nothing to write. An answer
// another replica took over (its lease ran out: this replica hung or lost Redis for that long) is
// fenced: its writes are refused, and queue() says so, so that its producer stops queueing. At
// stop() the leases of answers still running (a drain that ran out of time) are given up, so
// that other replicas take them over at once.
//
// Metrics: nines_redis_up, nines_journal_store_* (docs/metrics.md).
//
// Threading: queue(), primary(), up() and the reader slots from any thread; start() and stop()
// from the thread that made it.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "core/config/config.hpp"
#include "core/redis/redis_journal_layout.hpp"
#include "net/redis_connection.hpp"
#include "obs/metrics.hpp"

namespace nines::gateway {

class journal_store {
 public:
  // `password`: the primary's (from journal.store_password_file), or empty.
  journal_store(const core::journal_settings_config& settings, std::string password,
                obs::registry& metrics);
  ~journal_store();
  journal_store(const journal_store&) = delete;
  journal_store& operator=(const journal_store&) = delete;

  void start();
  // Sends what is queued (for at most a second), then ends the thread.
  void stop();

  // Queues `w` for the answer at `keys` (merged with what is queued for it already). Returns
  // false when the answer's copy is incomplete from now on (the queue was full): the caller may
  // stop queueing for it.
  bool queue(const core::redis_journal_keys& keys, core::redis_journal_write w);

  // Where the writer writes now (the primary, with db and password); nullopt while Redis is down.
  std::optional<net::redis_endpoint> primary() const;
  bool up() const { return up_.load(std::memory_order_relaxed); }

  // A reconnect reading from Redis holds a slot (at most journal.store_max_readers at once).
  bool take_reader_slot();
  void release_reader_slot();

  std::uint64_t ttl_ms() const { return static_cast<std::uint64_t>(settings_.ttl.count()); }
  std::uint64_t lease_ms() const {
    return static_cast<std::uint64_t>(settings_.store_lease.count());
  }
  // This replica's name in Redis (its answers' owner; a takeover's token starts with it).
  const std::string& id() const { return owner_; }

 private:
  struct pending {
    core::redis_journal_keys keys;
    core::redis_journal_write write;
    std::size_t bytes = 0;
  };
  using batch = std::map<std::string, pending, std::less<>>;  // by the answer's meta key
  // An answer this replica writes that has not ended: its lease is renewed.
  struct lease {
    core::redis_journal_keys keys;
    std::string owner;    // a takeover's token; empty: owner_
    bool fenced = false;  // another replica took it over
  };

  net::awaitable<void> run();
  net::awaitable<bool> connect();
  enum class sent { kept, unconfirmed, failed };
  net::awaitable<sent> send(batch& b);
  batch take();
  // Puts an unsent batch back in front of what was queued since (or marks its answers
  // incomplete when it no longer fits).
  void requeue(batch b);
  // With the lock held: merges `w` into `p`; false when it made the copy incomplete.
  bool merge(pending& p, core::redis_journal_write w, bool in_front);
  void set_primary(std::optional<net::redis_endpoint> at);
  // Queues an empty write (it renews the lease) for every leased answer with nothing queued.
  void renew_leases();
  void fence(const std::string& meta);

  core::journal_settings_config settings_;
  std::string password_;
  std::string owner_;  // this replica, in each answer's hash (the fencing token)

  mutable std::mutex mutex_;
  batch queued_;
  std::size_t queued_bytes_ = 0;
  std::map<std::string, lease, std::less<>> leases_;  // by the answer's meta key
  std::optional<net::redis_endpoint> primary_;
  std::function<void()> wake_;  // the writer's, set once it runs

  net::asio::io_context io_{1};
  std::unique_ptr<net::redis_connection> conn_;
  std::string script_sha_;
  std::atomic<bool> stopping_{false};
  bool releasing_ = false;  // stopping: leases written are given up (the writer's thread only)
  std::atomic<bool> up_{false};
  std::atomic<unsigned> readers_{0};
  std::thread thread_;

  // Counted for the metrics (read when scraped).
  std::atomic<std::uint64_t> appended_{0};
  std::atomic<std::uint64_t> incomplete_{0};
  std::atomic<std::uint64_t> failed_batches_{0};
  std::atomic<std::uint64_t> fenced_{0};
  std::atomic<std::uint64_t> unconfirmed_{0};
  std::atomic<std::uint64_t> connects_{0};
  std::atomic<std::uint64_t> readers_refused_{0};
};

}  // namespace nines::gateway
