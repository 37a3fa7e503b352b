#include "core/redis/redis_limit_layout.hpp"

#include <limits>

namespace nines::core {
namespace {

// KEYS[1] requests, KEYS[2] tokens; ARGV: request limit, need, extra, token limit, need, extra.
// Answers {1, second, requests granted, tokens granted, requests left, tokens left} or
// {0, second, 1 (requests) or 2 (tokens), reset ms, requests left, tokens left}.
constexpr std::string_view take_script = R"lua(
local t = redis.call('TIME')
local sec = tonumber(t[1])
local now_ms = sec * 1000 + math.floor(tonumber(t[2]) / 1000)
local function window(key)
  local flat = redis.call('HGETALL', key)
  local used, oldest = 0, nil
  for i = 1, #flat, 2 do
    local s = tonumber(flat[i])
    if s == nil or s <= sec - 60 then
      redis.call('HDEL', key, flat[i])
    else
      local n = tonumber(flat[i + 1]) or 0
      used = used + n
      if n > 0 and (oldest == nil or s < oldest) then oldest = s end
    end
  end
  return used, oldest
end
local limits = {tonumber(ARGV[1]), tonumber(ARGV[4])}
local needs = {tonumber(ARGV[2]), tonumber(ARGV[5])}
local extras = {tonumber(ARGV[3]), tonumber(ARGV[6])}
local used = {0, 0}
local grant = {0, 0}
for d = 1, 2 do
  if limits[d] > 0 then
    local u, oldest = window(KEYS[d])
    used[d] = u
    if u + needs[d] > limits[d] then
      local reset = 60000
      if oldest ~= nil then reset = math.max(1, (oldest + 60) * 1000 - now_ms) end
      return {0, sec, d, reset, math.max(0, limits[1] - used[1]), math.max(0, limits[2] - used[2])}
    end
  end
end
for d = 1, 2 do
  if limits[d] > 0 then
    grant[d] = math.min(needs[d] + extras[d], limits[d] - used[d])
    if grant[d] > 0 then
      redis.call('HINCRBY', KEYS[d], sec, grant[d])
      redis.call('PEXPIRE', KEYS[d], 61000)
    end
  end
end
return {1, sec, grant[1], grant[2], math.max(0, limits[1] - used[1] - grant[1]),
        math.max(0, limits[2] - used[2] - grant[2])}
)lua";

// KEYS[1] a limit's hash; ARGV: second, delta. Changes nothing once the second left the window.
constexpr std::string_view settle_script = R"lua(
local now = tonumber(redis.call('TIME')[1])
local s = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
if s == nil or delta == nil or s <= now - 60 or s > now + 60 then return 0 end
local have = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if delta < 0 then
  local less = math.min(have, -delta)
  if less > 0 then redis.call('HINCRBY', KEYS[1], ARGV[1], -less) end
  return -less
end
redis.call('HINCRBY', KEYS[1], ARGV[1], delta)
redis.call('PEXPIRE', KEYS[1], 61000)
return delta
)lua";

// KEYS[1] the replicas' set; ARGV: this replica's id, how long a beat counts.
constexpr std::string_view beat_script = R"lua(
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], 60000)
return redis.call('ZCARD', KEYS[1])
)lua";

constexpr std::uint64_t most = std::uint64_t{1} << 53;  // what Lua's numbers hold exactly

bool in_range(const redis_reply& r, long long low, long long high) {
  return r.type == redis_reply::kind::integer && r.integer >= low && r.integer <= high;
}

}  // namespace

redis_limit_keys redis_limit_keys_for(std::string_view key_id) {
  const std::string base = "nines:l:{" + std::string(key_id) + "}:";
  return {base + "r", base + "t"};
}

std::string_view redis_replicas_key() {
  return "nines:l:replicas";
}

std::string_view limit_take_script() {
  return take_script;
}
std::string_view limit_settle_script() {
  return settle_script;
}

std::vector<std::string> limit_take_command(const redis_limit_keys& keys, const limit_take& t) {
  return {"EVAL",
          std::string(take_script),
          "2",
          keys.requests,
          keys.tokens,
          std::to_string(t.request_limit),
          std::to_string(t.requests),
          std::to_string(t.extra_requests),
          std::to_string(t.token_limit),
          std::to_string(t.tokens),
          std::to_string(t.extra_tokens)};
}

std::optional<limit_grant> parse_limit_grant(const redis_reply& reply, const limit_take& asked) {
  if (reply.type != redis_reply::kind::array || reply.elements.size() != 6) {
    return std::nullopt;
  }
  const auto& e = reply.elements;
  const auto big = static_cast<long long>(most);
  if (!in_range(e[0], 0, 1) || !in_range(e[1], 0, big) || !in_range(e[4], 0, big) ||
      !in_range(e[5], 0, big)) {
    return std::nullopt;
  }
  limit_grant g;
  g.admitted = e[0].integer == 1;
  g.second = e[1].integer;
  g.requests_left = static_cast<std::uint64_t>(e[4].integer);
  g.tokens_left = static_cast<std::uint64_t>(e[5].integer);
  if (g.requests_left > asked.request_limit || g.tokens_left > asked.token_limit) {
    return std::nullopt;
  }
  if (!g.admitted) {
    if (!in_range(e[2], 1, 2) || !in_range(e[3], 1, 60000)) {
      return std::nullopt;
    }
    g.refused_for_tokens = e[2].integer == 2;
    if ((g.refused_for_tokens ? asked.token_limit : asked.request_limit) == 0) {
      return std::nullopt;  // refused by a limit it was not asked about
    }
    g.reset_ms = static_cast<std::uint64_t>(e[3].integer);
    return g;
  }
  // Granted: at least the need, at most the need and the extra, for the limits asked about.
  const auto fits = [](const redis_reply& r, std::uint64_t limit, std::uint64_t need,
                       std::uint64_t extra) {
    if (limit == 0) {
      return in_range(r, 0, 0);
    }
    return in_range(r, static_cast<long long>(need),
                    static_cast<long long>(std::min(need + extra, most)));
  };
  if (!fits(e[2], asked.request_limit, asked.requests, asked.extra_requests) ||
      !fits(e[3], asked.token_limit, asked.tokens, asked.extra_tokens)) {
    return std::nullopt;
  }
  g.requests = static_cast<std::uint64_t>(e[2].integer);
  g.tokens = static_cast<std::uint64_t>(e[3].integer);
  return g;
}

std::vector<std::string> limit_settle_command(std::string_view key, std::int64_t second,
                                              std::int64_t delta) {
  return {"EVAL",           std::string(settle_script), "1",
          std::string(key), std::to_string(second),     std::to_string(delta)};
}

std::vector<std::string> replica_beat_command(std::string_view replica_id, std::uint64_t alive_ms) {
  return {"EVAL",
          std::string(beat_script),
          "1",
          std::string(redis_replicas_key()),
          std::string(replica_id),
          std::to_string(alive_ms)};
}

std::optional<std::uint64_t> parse_live_replicas(const redis_reply& reply) {
  if (!in_range(reply, 1, 100000)) {
    return std::nullopt;  // at least this replica, which just said so
  }
  return static_cast<std::uint64_t>(reply.integer);
}

}  // namespace nines::core
