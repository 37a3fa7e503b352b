#include "gateway/shared_limits.hpp"

#include <algorithm>

#include "core/redis/redis_limit_layout.hpp"
#include "gateway/journal_store.hpp"
#include "net/spawn.hpp"
#include "obs/metrics.hpp"

namespace nines::gateway {
namespace {

using namespace net;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto take_within = milliseconds(100);
constexpr auto connect_within = milliseconds(250);
constexpr auto away_for = milliseconds(500);  // after a failed connect: no call tried meanwhile
constexpr auto no_primary_for = milliseconds(50);
constexpr auto fresh_for = std::chrono::seconds(1);
constexpr auto beat_every = std::chrono::seconds(1);
constexpr std::uint64_t alive_ms = 5000;  // a replica silent this long is not counted
constexpr std::size_t most_queued = 4096;
constexpr std::size_t most_per_pipeline = 64;

// A token reservation's settlement, sent to the shared count it was taken from (in `second`).
std::function<void(std::int64_t)> settle_in_redis(limit_caller& caller, const std::string& key_id,
                                                  std::int64_t second) {
  return [&caller, tokens = core::redis_limit_keys_for(key_id).tokens, second](std::int64_t delta) {
    caller.send(core::limit_settle_command(tokens, second, delta));
  };
}

}  // namespace

struct limit_caller::pending {
  std::string wire;
  std::optional<core::redis_reply> reply;
  bool done = false;
  std::unique_ptr<asio::steady_timer> signal;  // null: nobody waits (a send)
  // For a call whose waiter gave up before its reply came: what to do with the reply (a take's
  // grant is given back).
  std::function<void(const core::redis_reply&)> late;
  unsigned tries = 0;  // a send is tried this many times at most
};

limit_caller::limit_caller(asio::any_io_executor executor, journal_store& store)
    : executor_(executor), store_(store), wake_(executor) {}

void limit_caller::enqueue(std::shared_ptr<pending> p) {
  queue_.push_back(std::move(p));
  if (!running_) {
    running_ = true;
    auto ex = executor_;
    spawn(ex, run(), "shared limits caller");
  }
  wake_.cancel();
}

awaitable<std::optional<core::redis_reply>> limit_caller::call(
    std::vector<std::string> words, milliseconds within,
    std::function<void(const core::redis_reply&)> late) {
  const auto now = steady::now();
  if ((!conn_ && now < away_until_) || queue_.size() >= most_queued) {
    co_return std::nullopt;
  }
  auto p = std::make_shared<pending>();
  std::vector<std::string_view> views(words.begin(), words.end());
  core::append_redis_command(p->wire, views);
  p->signal = std::make_unique<asio::steady_timer>(executor_, now + within);
  p->late = std::move(late);
  enqueue(p);
  auto [ec] = co_await p->signal->async_wait(use_nothrow);
  (void)ec;
  if (!p->done) {
    p->signal.reset();  // given up: a reply that still comes goes to `late`
    co_return std::nullopt;
  }
  p->late = nullptr;
  co_return std::move(p->reply);
}

void limit_caller::send(std::vector<std::string> words) {
  if (queue_.size() >= most_queued) {
    return;
  }
  auto p = std::make_shared<pending>();
  std::vector<std::string_view> views(words.begin(), words.end());
  core::append_redis_command(p->wire, views);
  enqueue(std::move(p));
}

awaitable<void> limit_caller::run() {
  for (;;) {
    // Nothing to do: the loop ends (the next call starts it again), so that it holds no worker
    // open through a drain.
    if (queue_.empty()) {
      running_ = false;
      co_return;
    }
    if (!conn_ || !conn_->usable()) {
      conn_.reset();
      if (steady::now() < away_until_) {
        // Away: the calls waiting give up, the sends wait for the next try.
        for (auto& p : queue_) {
          if (p->signal) {
            p->signal->cancel();
          }
        }
        std::erase_if(queue_, [](const auto& p) { return p->signal || p->late; });
        if (queue_.empty()) {
          continue;
        }
        wake_.expires_at(away_until_);
        auto [ec] = co_await wake_.async_wait(use_nothrow);
        (void)ec;
        continue;
      }
      std::optional<redis_endpoint> at = store_.primary();
      std::string why;
      if (at) {
        conn_ =
            co_await redis_connection::open(std::move(*at), steady::now() + connect_within, why);
      }
      if (!conn_) {
        // No primary known yet (the journal's writer finds it: at start, after a failover) is
        // looked at again soon; a primary that did not answer, after a while.
        away_until_ = steady::now() + (at ? away_for : no_primary_for);
        // A send waits for at most three connects: Redis away longer, it is dropped (and the
        // loop ends, holding no drain up).
        std::erase_if(queue_,
                      [](const auto& p) { return !p->signal && !p->late && ++p->tries >= 3; });
        continue;
      }
    }
    // What is sent now: calls still waited for (one that was given up would count what nobody
    // uses) and sends, at most a pipeline's worth.
    std::vector<std::shared_ptr<pending>> batch;
    const auto now = steady::now();
    while (!queue_.empty() && batch.size() < most_per_pipeline) {
      auto p = std::move(queue_.front());
      queue_.pop_front();
      const bool given_up = p->late && !p->signal;
      if (!given_up && (!p->signal || p->signal->expiry() > now)) {
        batch.push_back(std::move(p));
      }
    }
    if (batch.empty()) {
      continue;
    }
    std::string wire;
    for (const auto& p : batch) {
      wire += p->wire;
    }
    std::optional<std::vector<core::redis_reply>> replies =
        co_await conn_->exec(std::move(wire), batch.size(), steady::now() + take_within);
    if (!replies) {
      conn_.reset();
      // Calls give up; a send is tried again (at most three times: a give-back or a settlement
      // lost would leave the shared count wrong for up to a minute).
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
        auto& p = *it;
        if (p->signal) {
          p->signal->cancel();
        } else if (!p->late && ++p->tries < 3 && queue_.size() < most_queued) {
          queue_.push_front(std::move(p));
        }
      }
      continue;
    }
    bool demoted = false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto& reply = (*replies)[i];
      // A primary that became a replica (a failover that kept connections): find the new one.
      if (reply.is_error() &&
          (reply.text.starts_with("READONLY") || reply.text.starts_with("MASTERDOWN"))) {
        demoted = true;
      }
      auto& p = batch[i];
      if (p->signal) {
        p->reply = std::move(reply);
        p->done = true;
        p->signal->cancel();
      } else if (p->late) {
        p->late(reply);
      }
    }
    if (demoted) {
      conn_.reset();
    }
  }
}

shared_limits::shared_limits(core::shared_limits_mode mode, journal_store& store,
                             obs::registry& metrics)
    : mode_(mode), store_(store) {
  const auto count = [](const std::atomic<std::uint64_t>& n) {
    return [&n] { return static_cast<double>(n.load(std::memory_order_relaxed)); };
  };
  const std::string help =
      "Requests admitted or refused by the per-minute limits shared across replicas "
      "(auth.shared_limits), by what decided.";
  metrics.counter_function("nines_shared_limit_decisions_total", help,
                           {{"by", "allowance"}, {"outcome", "admitted"}}, count(from_allowance_));
  metrics.counter_function("nines_shared_limit_decisions_total", help,
                           {{"by", "redis"}, {"outcome", "admitted"}}, count(from_redis_));
  metrics.counter_function("nines_shared_limit_decisions_total", help,
                           {{"by", "redis"}, {"outcome", "refused"}}, count(refused_));
  metrics.counter_function("nines_shared_limit_decisions_total", help,
                           {{"by", "store_away"}, {"outcome", "any"}}, count(store_away_));
  metrics.gauge_function("nines_live_replicas",
                         "Gateway replicas that said they live in the shared limits' Redis within "
                         "5 s (the last count seen while it is away).",
                         {}, [this] { return static_cast<double>(live_replicas()); });
}

awaitable<std::optional<core::access_refusal>> shared_limits::admit(limit_caller& caller,
                                                                    core::access_ticket& ticket) {
  const core::client_key* key = ticket.key();
  if (key == nullptr || (key->requests_per_minute == 0 && key->tokens_per_minute == 0)) {
    co_return std::nullopt;
  }
  const auto now = steady::now();
  core::limit_take take;
  take.request_limit = key->requests_per_minute;
  take.requests = take.request_limit > 0 ? 1 : 0;
  take.token_limit = key->tokens_per_minute;
  take.tokens = take.token_limit > 0 ? ticket.reserved_tokens() : 0;
  if (take.requests == 0 && take.tokens == 0) {
    co_return std::nullopt;  // nothing to count (a request that reserves no tokens)
  }
  std::optional<allowance> stale;
  {
    std::lock_guard lock(mutex_);
    auto& a = allowances_[key->id];
    const bool fresh = now - a.granted < fresh_for;
    if (fresh && a.requests >= take.requests && a.tokens >= take.tokens) {
      a.requests -= take.requests;
      a.tokens -= take.tokens;
      const auto second = a.second;
      from_allowance_.fetch_add(1, std::memory_order_relaxed);
      if (take.tokens > 0) {
        ticket.also_settle(settle_in_redis(caller, key->id, second));
      }
      co_return std::nullopt;
    }
    // Busy here (the last grant within a second): ask for more ahead, twice as much each time.
    const std::uint64_t most_extra = key->requests_per_minute / 50;
    a.extra = fresh ? std::min<std::uint64_t>(std::max<std::uint64_t>(a.extra * 2, 1), most_extra)
                    : 0;
    take.extra_requests = take.requests > 0 ? a.extra : 0;
    take.extra_tokens =
        take.tokens > 0 ? std::min(a.extra * take.tokens, key->tokens_per_minute / 50) : 0;
    if (take.requests == 0) {
      take.extra_tokens = 0;  // tokens only: what each request reserves differs too much
    }
    if (a.requests > 0 || a.tokens > 0) {
      stale = a;  // what is left of the last grant goes back; the new one replaces it
      a.requests = 0;
      a.tokens = 0;
    }
  }
  const auto keys = core::redis_limit_keys_for(key->id);
  if (stale) {
    give_back(caller, key->id, *stale);
  }
  std::vector<std::string> words = core::limit_take_command(keys, take);
  // A grant that comes after this request stopped waiting goes back at once.
  auto late = [this, &caller, id = key->id, take](const core::redis_reply& r) {
    if (const auto g = core::parse_limit_grant(r, take); g && g->admitted) {
      give_back(caller, id, allowance{g->requests, g->tokens, g->second});
    }
  };
  std::optional<core::redis_reply> reply =
      co_await caller.call(std::move(words), take_within, std::move(late));
  const auto grant = reply ? core::parse_limit_grant(*reply, take) : std::nullopt;
  if (!grant) {
    store_away_.fetch_add(1, std::memory_order_relaxed);
    co_return fallback(ticket, now);
  }
  if (!grant->admitted) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    const auto reserve = ticket.reserved_tokens();
    ticket.withdraw(steady::now());
    co_return core::per_minute_refusal(*key, grant->refused_for_tokens, reserve,
                                       milliseconds(grant->reset_ms), grant->requests_left,
                                       grant->tokens_left, " across replicas");
  }
  from_redis_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mutex_);
    auto& a = allowances_[key->id];
    if (a.requests > 0 || a.tokens > 0) {
      stale = a;  // another request's grant landed meanwhile: the older goes back
    } else {
      stale.reset();
    }
    a.requests = grant->requests - take.requests;
    a.tokens = grant->tokens - take.tokens;
    a.second = grant->second;
    a.granted = steady::now();
  }
  if (stale) {
    give_back(caller, key->id, *stale);
  }
  if (take.tokens > 0) {
    ticket.also_settle(settle_in_redis(caller, key->id, grant->second));
  }
  co_return std::nullopt;
}

std::optional<core::access_refusal> shared_limits::fallback(core::access_ticket& ticket,
                                                            steady::time_point now) {
  const core::client_key& key = *ticket.key();
  auto mode = mode_;
  switch (key.when_store_away) {
    case core::limits_store_away::as_configured:
      break;
    case core::limits_store_away::open:
      mode = core::shared_limits_mode::open;
      break;
    case core::limits_store_away::closed:
      mode = core::shared_limits_mode::closed;
      break;
    case core::limits_store_away::local_share:
      mode = core::shared_limits_mode::local_share;
      break;
  }
  switch (mode) {
    case core::shared_limits_mode::off:
    case core::shared_limits_mode::open:
      return std::nullopt;
    case core::shared_limits_mode::closed: {
      ticket.withdraw(now);
      core::access_refusal r;
      r.status = 503;
      r.type = "api_error";
      r.code = "rate_limit_store_unavailable";
      r.message =
          "the limits shared by the gateway's replicas cannot be checked now (their "
          "Redis is away); try again shortly";
      r.reason = "store";
      r.headers.emplace_back("retry-after", "1");
      return r;
    }
    case core::shared_limits_mode::local_share: {
      // This replica's own last minute, this request included, within its share.
      const auto replicas = std::max<std::uint64_t>(1, live_replicas());
      const auto [requests, tokens] = ticket.used_here(now);
      const auto share = [replicas](std::uint64_t limit) {
        return (limit + replicas - 1) / replicas;
      };
      const bool over_requests =
          key.requests_per_minute > 0 && requests > share(key.requests_per_minute);
      const bool over_tokens = key.tokens_per_minute > 0 && tokens > share(key.tokens_per_minute);
      if (!over_requests && !over_tokens) {
        return std::nullopt;
      }
      const auto reserve = ticket.reserved_tokens();
      ticket.withdraw(now);
      return core::per_minute_refusal(key, !over_requests, reserve, std::chrono::seconds(1), 0, 0,
                                      " (this replica's share while the shared count is away)");
    }
  }
  return std::nullopt;
}

void shared_limits::give_back(limit_caller& caller, const std::string& key_id, const allowance& a) {
  const auto keys = core::redis_limit_keys_for(key_id);
  if (a.requests > 0) {
    caller.send(core::limit_settle_command(keys.requests, a.second,
                                           -static_cast<std::int64_t>(a.requests)));
  }
  if (a.tokens > 0) {
    caller.send(
        core::limit_settle_command(keys.tokens, a.second, -static_cast<std::int64_t>(a.tokens)));
  }
}

awaitable<void> shared_limits::keep(limit_caller& caller, const std::atomic<bool>& stopping) {
  while (!stopping.load(std::memory_order_relaxed)) {
    std::vector<std::string> words = core::replica_beat_command(store_.id(), alive_ms);
    std::optional<core::redis_reply> reply = co_await caller.call(std::move(words), take_within);
    if (reply) {
      if (const auto live = core::parse_live_replicas(*reply)) {
        live_.store(*live, std::memory_order_relaxed);
      }
    }
    // Allowance not used within a second goes back to the shared count.
    std::vector<std::pair<std::string, allowance>> stale;
    const auto now = steady::now();
    {
      std::lock_guard lock(mutex_);
      for (auto it = allowances_.begin(); it != allowances_.end();) {
        if (now - it->second.granted >= fresh_for) {
          if (it->second.requests > 0 || it->second.tokens > 0) {
            stale.emplace_back(it->first, it->second);
          }
          it = allowances_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const auto& [id, a] : stale) {
      give_back(caller, id, a);
    }
    if (!co_await sleep_for(beat_every)) {
      break;
    }
  }
  // Stopping: all allowance still held goes back.
  std::vector<std::pair<std::string, allowance>> held;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, a] : allowances_) {
      if (a.requests > 0 || a.tokens > 0) {
        held.emplace_back(id, a);
      }
    }
    allowances_.clear();
  }
  for (const auto& [id, a] : held) {
    give_back(caller, id, a);
  }
}

}  // namespace nines::gateway
