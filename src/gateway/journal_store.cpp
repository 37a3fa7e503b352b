#include "gateway/journal_store.hpp"

#include <spdlog/spdlog.h>

#include <random>

#include "core/access/secret_digest.hpp"
#include "net/redis_sentinel.hpp"
#include "net/spawn.hpp"
#include "net/thread_waker.hpp"

namespace nines::gateway {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto round_trip = milliseconds(2000);  // a pipeline's (and a connect's) deadline
constexpr auto idle_ping = milliseconds(1000);   // Redis is asked PING when nothing was written
constexpr auto first_backoff = milliseconds(100);
constexpr auto most_backoff = milliseconds(2000);
constexpr auto flush_at_stop = milliseconds(1000);
constexpr auto replication_wait = milliseconds(500);  // WAIT's timeout
// The writer's replies are integers and short errors: Redis cannot make it hold more.
constexpr core::redis_reader_limits reply_limits{1u << 20, 1u << 16};

// What a write holds in the queue: its bytes and their bookkeeping.
std::size_t cost_of(const core::redis_journal_write& w) {
  std::size_t n = 64 + (w.head ? w.head->size() : 0) + (w.end ? w.end->size() : 0);
  for (const auto& e : w.events) {
    n += e.size() + 32;
  }
  return n;
}

core::redis_journal_write incomplete_from(std::uint64_t seq) {
  core::redis_journal_write w;
  w.first_seq = seq;
  w.broken = true;
  return w;
}

}  // namespace

journal_store::journal_store(const core::journal_settings_config& settings, std::string password,
                             obs::registry& metrics)
    : settings_(settings),
      password_(std::move(password)),
      owner_("gw-" + core::new_client_secret().substr(3, 22)) {
  const auto count = [](const std::atomic<std::uint64_t>& n) {
    return [&n] { return static_cast<double>(n.load(std::memory_order_relaxed)); };
  };
  metrics.gauge_function("nines_redis_up",
                         "1 while the shared journal's Redis answers (journal.store), else 0.", {},
                         [this] { return up() ? 1.0 : 0.0; });
  metrics.gauge_function("nines_journal_store_queue_bytes",
                         "Bytes of journal writes waiting for Redis (bounded by "
                         "journal.store_queue_bytes).",
                         {}, [this] {
                           std::lock_guard lock(mutex_);
                           return static_cast<double>(queued_bytes_);
                         });
  metrics.counter_function(
      "nines_journal_store_appends_total",
      "Script calls that wrote to an answer in Redis (appends, and lease renewals "
      "of answers with nothing to append).",
      {}, count(appended_));
  metrics.counter_function("nines_journal_store_incomplete_total",
                           "Answers whose copy in Redis was marked incomplete because the queue "
                           "for Redis was full.",
                           {}, count(incomplete_));
  metrics.counter_function("nines_journal_store_failed_batches_total",
                           "Pipelines to Redis that failed (sent again after a reconnect).", {},
                           count(failed_batches_));
  metrics.counter_function("nines_journal_store_unconfirmed_total",
                           "Pipelines that journal.store_wait_replicas replicas did not confirm in "
                           "time (sent again).",
                           {}, count(unconfirmed_));
  metrics.counter_function("nines_journal_store_fenced_total",
                           "Writes Redis refused because another replica owns the answer.", {},
                           count(fenced_));
  metrics.counter_function("nines_journal_store_connects_total",
                           "Connections made to the shared journal's Redis primary.", {},
                           count(connects_));
  metrics.counter_function("nines_journal_store_readers_refused_total",
                           "Reconnects refused because journal.store_max_readers were reading "
                           "from Redis.",
                           {}, count(readers_refused_));
}

journal_store::~journal_store() {
  stop();
}

void journal_store::start() {
  thread_ = std::thread([this] {
    net::spawn(io_.get_executor(), run(), "journal store");
    io_.run();
  });
}

void journal_store::stop() {
  stopping_ = true;
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    wake = wake_;
  }
  if (wake) {
    wake();
  }
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool journal_store::queue(const core::redis_journal_keys& keys, core::redis_journal_write w) {
  std::function<void()> wake;
  bool kept = false;
  {
    std::lock_guard lock(mutex_);
    const bool ends = w.end || w.broken;
    auto held = leases_.find(keys.meta);
    if (held != leases_.end() && held->second.fenced) {
      leases_.erase(held);
      return false;  // another replica writes it now: its producer queues no more
    }
    if (ends && held != leases_.end()) {
      leases_.erase(held);
    } else if (!ends && held == leases_.end()) {
      leases_.emplace(keys.meta, lease{keys, w.owner, false});
    }
    const bool was_empty = queued_.empty();
    auto it = queued_.find(keys.meta);
    if (it == queued_.end()) {
      it = queued_.emplace(keys.meta, pending{keys, {}, 0}).first;
      it->second.write.first_seq = w.first_seq;
      it->second.write.owner = w.owner;
    }
    kept = merge(it->second, std::move(w), false);
    if (!kept) {
      leases_.erase(keys.meta);  // marked incomplete: it ended, and its producer queues no more
    }
    if (was_empty) {
      wake = wake_;  // the writer takes everything queued each time: one wake per batch
    }
  }
  if (wake) {
    wake();
  }
  return kept;
}

bool journal_store::merge(pending& p, core::redis_journal_write w, bool in_front) {
  const auto cost = cost_of(w);
  auto& older = in_front ? w : p.write;
  auto& newer = in_front ? p.write : w;
  const bool contiguous = older.events.empty() || newer.events.empty() ||
                          older.first_seq + older.events.size() == newer.first_seq;
  const bool fits = queued_bytes_ + cost <= settings_.store_queue_bytes;
  if (p.write.broken || w.broken || !fits || !contiguous) {
    if (!p.write.broken && !w.broken) {
      incomplete_.fetch_add(1, std::memory_order_relaxed);
    }
    const auto from = std::min(older.first_seq, newer.first_seq);
    queued_bytes_ -= p.bytes;
    auto owner = std::move(p.write.owner);
    p.write = incomplete_from(from);
    p.write.owner = std::move(owner);
    p.bytes = cost_of(p.write);
    queued_bytes_ += p.bytes;  // a few bytes past the bound: the mark must get there
    return false;
  }
  core::redis_journal_write out;
  out.owner = std::move(p.write.owner);
  out.first_seq = older.events.empty() ? newer.first_seq : older.first_seq;
  out.head = older.head ? std::move(older.head) : std::move(newer.head);
  out.events = std::move(older.events);
  out.events.insert(out.events.end(), std::make_move_iterator(newer.events.begin()),
                    std::make_move_iterator(newer.events.end()));
  out.end = newer.end ? std::move(newer.end) : std::move(older.end);
  p.write = std::move(out);
  p.bytes += cost;
  queued_bytes_ += cost;
  return true;
}

journal_store::batch journal_store::take() {
  std::lock_guard lock(mutex_);
  batch out;
  out.swap(queued_);
  queued_bytes_ = 0;
  return out;
}

void journal_store::requeue(batch b) {
  std::lock_guard lock(mutex_);
  for (auto& [meta, p] : b) {
    auto it = queued_.find(meta);
    if (it == queued_.end()) {
      it = queued_.emplace(meta, pending{p.keys, {}, 0}).first;
      it->second.write.first_seq = p.write.first_seq;
      it->second.write.owner = p.write.owner;
    }
    merge(it->second, std::move(p.write), true);
  }
}

void journal_store::renew_leases() {
  std::lock_guard lock(mutex_);
  for (const auto& [meta, held] : leases_) {
    if (held.fenced || queued_.contains(meta)) {
      continue;  // taken over; or renewed by what is queued
    }
    pending p{held.keys, {}, 64};
    p.write.first_seq = 1;  // no events: the call renews the lease and the expiry
    p.write.owner = held.owner;
    queued_.emplace(meta, std::move(p));
    queued_bytes_ += 64;
  }
}

void journal_store::fence(const std::string& meta) {
  std::lock_guard lock(mutex_);
  if (auto it = leases_.find(meta); it != leases_.end()) {
    it->second.fenced = true;
  }
}

std::optional<net::redis_endpoint> journal_store::primary() const {
  std::lock_guard lock(mutex_);
  return primary_;
}

void journal_store::set_primary(std::optional<net::redis_endpoint> at) {
  std::lock_guard lock(mutex_);
  primary_ = std::move(at);
}

bool journal_store::take_reader_slot() {
  if (readers_.fetch_add(1, std::memory_order_relaxed) >= settings_.store_max_readers) {
    readers_.fetch_sub(1, std::memory_order_relaxed);
    readers_refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void journal_store::release_reader_slot() {
  readers_.fetch_sub(1, std::memory_order_relaxed);
}

net::awaitable<bool> journal_store::connect() {
  const auto deadline = steady::now() + round_trip;
  const auto& a = *settings_.store;
  std::string why;
  std::unique_ptr<net::redis_connection> conn;
  net::redis_endpoint at;
  at.password = password_;
  if (a.type == core::redis_store_address::kind::server) {
    at.host = a.nodes.front().host;
    at.port = a.nodes.front().port;
    at.db = a.db;
    net::redis_endpoint to = at;
    conn = co_await net::redis_connection::open(std::move(to), deadline, why, reply_limits);
  } else {
    std::vector<net::redis_endpoint> sentinels;
    for (const auto& n : a.nodes) {
      net::redis_endpoint s;
      s.host = n.host;
      s.port = n.port;
      sentinels.push_back(std::move(s));
    }
    std::string name = a.master_name;
    net::redis_endpoint asked = at;
    net::redis_primary found = co_await net::find_redis_primary(
        std::move(sentinels), std::move(name), std::move(asked), deadline);
    conn = std::move(found.conn);
    why = std::move(found.why);
    at = std::move(found.at);
  }
  if (!conn) {
    if (up_.exchange(false) || connects_.load() == 0) {
      spdlog::warn("journal store {}: {} (retrying; streams go on from this replica's memory)",
                   core::describe_redis_store_address(a), why);
    }
    co_return false;
  }
  std::vector<std::string> load{"SCRIPT", "LOAD", std::string(core::journal_append_script())};
  std::optional<core::redis_reply> sha = co_await conn->call(std::move(load), deadline);
  if (!sha || sha->type != core::redis_reply::kind::string || sha->text.size() != 40) {
    spdlog::warn("journal store at {}:{}: SCRIPT LOAD failed: {}", at.host, at.port,
                 sha ? core::describe_redis_reply(*sha) : conn->problem());
    co_return false;
  }
  script_sha_ = sha->text;
  conn_ = std::move(conn);
  connects_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("journal store: writing to the Redis primary at {}:{} (db {})", at.host, at.port,
               at.db);
  set_primary(std::move(at));
  up_ = true;
  co_return true;
}

net::awaitable<journal_store::sent> journal_store::send(batch& b) {
  std::string wire;
  std::size_t commands = 0;
  std::vector<const std::string*> answer_of;  // each command's answer (its meta key)
  for (const auto& [meta, p] : b) {
    const auto& owner = p.write.owner.empty() ? owner_ : p.write.owner;
    const auto lease = releasing_ ? 1 : lease_ms();  // 1 ms: given up
    const auto n =
        core::append_journal_write(wire, p.keys, owner, script_sha_, ttl_ms(), lease, p.write);
    answer_of.insert(answer_of.end(), n, &meta);
    commands += n;
  }
  if (commands == 0) {
    co_return sent::kept;
  }
  const unsigned replicas = settings_.wait_replicas();
  const std::string wait_for = std::to_string(replicas);
  const std::string wait_ms = std::to_string(replication_wait.count());
  if (replicas > 0) {
    core::append_redis_command(wire, {"WAIT", wait_for, wait_ms});
  }
  const std::size_t expected = commands + (replicas > 0 ? 1 : 0);
  auto replies = co_await conn_->exec(std::move(wire), expected,
                                      steady::now() + round_trip + replication_wait);
  if (!replies) {
    spdlog::warn(
        "journal store: a pipeline of {} writes failed: {} (reconnecting; sent again "
        "after)",
        commands, conn_->problem());
    co_return sent::failed;
  }
  std::size_t refused = 0;
  std::string first_refusal;
  for (std::size_t i = 0; i < commands; ++i) {
    const auto& r = (*replies)[i];
    if (!r.is_error()) {
      appended_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (r.text.starts_with("NOSCRIPT") || r.text.starts_with("READONLY")) {
      // A new primary without the script, or this one demoted: reconnect (through the
      // Sentinels) and send it all again.
      spdlog::warn("journal store: Redis answered {}: reconnecting", core::describe_redis_reply(r));
      co_return sent::failed;
    }
    if (r.text.starts_with("FENCED")) {
      fenced_.fetch_add(1, std::memory_order_relaxed);
      fence(*answer_of[i]);
      continue;
    }
    if (refused++ == 0) {
      first_refusal = core::describe_redis_reply(r);
    }
  }
  if (refused > 0) {
    spdlog::warn("journal store: Redis refused {} of {} writes (first: {})", refused, commands,
                 first_refusal);
  }
  if (replicas > 0) {
    const auto& acked = replies->back();
    if (acked.type != core::redis_reply::kind::integer || acked.integer < replicas) {
      // Not on enough replicas yet: a failover now would lose it. Sent again (the script skips
      // what the primary has), until they have it.
      unconfirmed_.fetch_add(1, std::memory_order_relaxed);
      co_return sent::unconfirmed;
    }
  }
  co_return sent::kept;
}

net::awaitable<void> journal_store::run() {
  auto waker = std::make_shared<net::thread_waker>(co_await net::asio::this_coro::executor);
  {
    std::lock_guard lock(mutex_);
    wake_ = net::thread_waker::notifier(waker);
  }
  std::minstd_rand jitter(static_cast<std::uint32_t>(steady::now().time_since_epoch().count()));
  auto backoff = first_backoff;
  std::optional<steady::time_point> stop_by;
  const auto renew_every = std::max(milliseconds(50), settings_.store_lease / 3);
  auto renew_at = steady::now() + renew_every;
  for (;;) {
    if (stopping_ && !stop_by) {
      stop_by = steady::now() + flush_at_stop;
      // What still runs now is stopped with this process (a drain that ran out of time): its
      // leases are given up with the last writes, so that the replicas its clients reconnect to
      // take the streams over at once instead of a lease later.
      releasing_ = true;
      renew_leases();
    }
    if (stop_by && steady::now() >= *stop_by) {
      break;
    }
    if (!conn_ || !conn_->usable()) {
      conn_.reset();
      if (stop_by) {
        break;  // Redis away at the stop: what is queued stays unsent
      }
      if (co_await connect()) {
        backoff = first_backoff;
        continue;
      }
      up_ = false;
      set_primary(std::nullopt);
      const auto pause = backoff + milliseconds(jitter() % (backoff.count() / 2 + 1));
      backoff = std::min(backoff * 2, most_backoff);
      const auto until = steady::now() + pause;
      while (!stopping_ && steady::now() < until) {
        co_await waker->wait(until);  // woken by writes too: they wait for the reconnect
      }
      continue;
    }
    if (steady::now() >= renew_at && !stop_by) {
      renew_leases();
      renew_at = steady::now() + renew_every;
    }
    batch b = take();
    if (b.empty()) {
      if (stop_by) {
        break;
      }
      if (co_await waker->wait(std::min(steady::now() + idle_ping, renew_at)) || stopping_) {
        continue;
      }
      bool leasing = false;
      {
        std::lock_guard lock(mutex_);
        leasing = !leases_.empty();
      }
      if (leasing) {
        continue;  // the renewals are written now: they show whether Redis answers
      }
      std::vector<std::string> ping{"PING"};
      std::optional<core::redis_reply> pong =
          co_await conn_->call(std::move(ping), steady::now() + round_trip);
      if (!pong || !pong->is_status("PONG")) {
        spdlog::warn("journal store: PING unanswered: {}",
                     pong ? core::describe_redis_reply(*pong) : conn_->problem());
        conn_.reset();
        up_ = false;
        set_primary(std::nullopt);
      }
      continue;
    }
    const sent outcome = co_await send(b);
    if (outcome == sent::unconfirmed) {
      requeue(std::move(b));
    } else if (outcome == sent::failed) {
      failed_batches_.fetch_add(1, std::memory_order_relaxed);
      requeue(std::move(b));
      conn_.reset();
      up_ = false;
      set_primary(std::nullopt);
    }
  }
  conn_.reset();
  up_ = false;
  set_primary(std::nullopt);
}

}  // namespace nines::gateway
