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
constexpr auto fresh_for = std::chrono::seconds(1);
constexpr auto beat_every = std::chrono::seconds(1);
constexpr std::uint64_t alive_ms = 5000;  // a replica silent this long is not counted
constexpr std::size_t most_queued = 4096;
constexpr std::size_t most_per_pipeline = 64;

}  // namespace

struct limit_caller::pending {
  std::string wire;
  std::optional<core::redis_reply> reply;
  bool done = false;
  std::unique_ptr<asio::steady_timer> signal;  // null: nobody waits
};

limit_caller::limit_caller(asio::any_io_executor executor, journal_store& store)
    : executor_(executor), store_(store), wake_(executor) {}

awaitable<std::optional<core::redis_reply>> limit_caller::call(std::vector<std::string> words,
                                                               milliseconds within) {
  const auto now = steady::now();
  if ((!conn_ && now < away_until_) || queue_.size() >= most_queued) {
    co_return std::nullopt;
  }
  auto p = std::make_shared<pending>();
  std::vector<std::string_view> views(words.begin(), words.end());
  core::append_redis_command(p->wire, views);
  p->signal = std::make_unique<asio::steady_timer>(executor_, now + within);
  queue_.push_back(p);
  if (!running_) {
    running_ = true;
    auto ex = executor_;
    spawn(ex, run(), "shared limits caller");
  }
  wake_.cancel();
  auto [ec] = co_await p->signal->async_wait(use_nothrow);
  (void)ec;
  if (!p->done) {
    co_return std::nullopt;  // out of time (the answer, when it comes, goes nowhere)
  }
  co_return std::move(p->reply);
}

void limit_caller::send(std::vector<std::string> words) {
  if ((!conn_ && steady::now() < away_until_) || queue_.size() >= most_queued) {
    return;
  }
  auto p = std::make_shared<pending>();
  std::vector<std::string_view> views(words.begin(), words.end());
  core::append_redis_command(p->wire, views);
  queue_.push_back(std::move(p));
  if (!running_) {
    running_ = true;
    auto ex = executor_;
    spawn(ex, run(), "shared limits caller");
  }
  wake_.cancel();
}

awaitable<void> limit_caller::run() {
  for (;;) {
    if (queue_.empty()) {
      wake_.expires_at(steady::time_point::max());
      auto [ec] = co_await wake_.async_wait(use_nothrow);
      (void)ec;
      continue;
    }
    std::vector<std::shared_ptr<pending>> batch;
    const auto now = steady::now();
    while (!queue_.empty() && batch.size() < most_per_pipeline) {
      auto p = std::move(queue_.front());
      queue_.pop_front();
      // A take whose request stopped waiting is not sent: it would count what nobody uses.
      if (!p->signal || p->signal->expiry() > now) {
        batch.push_back(std::move(p));
      }
    }
    if (batch.empty()) {
      continue;
    }
    const auto fail_all = [&batch] {
      for (auto& p : batch) {
        if (p->signal) {
          p->signal->cancel();
        }
      }
    };
    if (!conn_ || !conn_->usable()) {
      conn_.reset();
      std::optional<redis_endpoint> at = store_.primary();
      std::string why;
      if (at) {
        conn_ =
            co_await redis_connection::open(std::move(*at), steady::now() + connect_within, why);
      }
      if (!conn_) {
        away_until_ = steady::now() + away_for;
        fail_all();
        continue;
      }
    }
    std::string wire;
    for (const auto& p : batch) {
      wire += p->wire;
    }
    std::optional<std::vector<core::redis_reply>> replies =
        co_await conn_->exec(std::move(wire), batch.size(), steady::now() + take_within);
    if (!replies) {
      conn_.reset();
      fail_all();
      continue;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->reply = std::move((*replies)[i]);
      batch[i]->done = true;
      if (batch[i]->signal) {
        batch[i]->signal->cancel();
      }
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
        const auto keys = core::redis_limit_keys_for(key->id);
        ticket.also_settle([&caller, tokens = keys.tokens, second](std::int64_t delta) {
          caller.send(core::limit_settle_command(tokens, second, delta));
        });
      }
      co_return std::nullopt;
    }
    // Busy here (the last grant within a second): ask for more ahead, twice as much each time.
    a.extra = fresh ? std::clamp<std::uint64_t>(a.extra * 2, 1, key->requests_per_minute / 50) : 0;
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
  std::optional<core::redis_reply> reply = co_await caller.call(std::move(words), take_within);
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
    ticket.also_settle([&caller, tokens = keys.tokens, second = grant->second](std::int64_t delta) {
      caller.send(core::limit_settle_command(tokens, second, delta));
    });
  }
  co_return std::nullopt;
}

std::optional<core::access_refusal> shared_limits::fallback(core::access_ticket& ticket,
                                                            steady::time_point now) {
  const core::client_key& key = *ticket.key();
  switch (mode_) {
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
      co_return;
    }
  }
}

}  // namespace nines::gateway
