#include "core/redis/redis_journal_layout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>

#include "core/access/secret_digest.hpp"
#include "core/config/key_values.hpp"

namespace nines::core {
namespace {

namespace json = boost::json;

constexpr std::size_t max_fields = 128;
constexpr std::size_t max_field_name = 256;
constexpr std::size_t max_field_value = 8192;
constexpr std::size_t max_upstreams = 64;

constexpr std::string_view script =
    R"lua(-- nines: append to a journaled answer (core/redis/redis_journal_layout.hpp)
-- KEYS[1] its hash, KEYS[2] its events; ARGV[1] owner, ARGV[2] ttl ms, ARGV[3] lease ms or '0',
-- ARGV[4] head or '', ARGV[5] end or '', ARGV[6] '1' when events were lost, ARGV[7] first
-- sequence number, ARGV[8..] the events.
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[1] then
  return redis.error_reply('FENCED another gateway writes this answer')
end
if not owner then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1])
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
  if ARGV[4] ~= '' then
    redis.call('HSET', KEYS[1], 'head', ARGV[4])
  end
  local broken = ARGV[6] == '1'
  local seq = tonumber(ARGV[7])
  for i = 8, #ARGV do
    if seq == last + 1 then
      redis.call('XADD', KEYS[2], '0-' .. seq, 'd', ARGV[i])
      last = seq
    elseif seq > last + 1 then
      broken = true
      break
    end
    seq = seq + 1
  end
  redis.call('HSET', KEYS[1], 'last', last)
  if broken then
    redis.call('XADD', KEYS[2], '0-' .. (last + 1), 'g', '1')
    redis.call('HSET', KEYS[1], 'ended', '1', 'broken', '1')
  elseif ARGV[5] ~= '' then
    redis.call('XADD', KEYS[2], '0-' .. (last + 1), 'x', ARGV[5])
    redis.call('HSET', KEYS[1], 'ended', '1')
  elseif ARGV[3] ~= '0' then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('HSET', KEYS[1], 'lease', now + tonumber(ARGV[3]))
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return last
)lua";

constexpr std::string_view takeover_script =
    R"lua(-- nines: take over a journaled answer whose owner stopped (core/redis/redis_journal_layout.hpp)
-- KEYS[1] its hash, KEYS[2] its events; ARGV[1] the taker, ARGV[2] lease ms, ARGV[3] ttl ms.
local m = redis.call('HMGET', KEYS[1], 'owner', 'lease', 'ended', 'last')
if not m[1] then
  return {'absent'}
end
if m[3] then
  return {'ended'}
end
if not m[2] then
  return {'held', '-1'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local left = tonumber(m[2]) - now
if left > 0 then
  return {'held', tostring(left)}
end
local epoch = redis.call('HINCRBY', KEYS[1], 'epoch', 1)
local owner = ARGV[1] .. '/' .. epoch
redis.call('HSET', KEYS[1], 'owner', owner, 'lease', now + tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'ours', owner, m[4] or '0'}
)lua";

bool token_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

bool field_name_ok(std::string_view name) {
  if (name.empty() || name.size() > max_field_name) {
    return false;
  }
  for (const unsigned char c : name) {
    if (!token_char(c)) {
      return false;
    }
  }
  return true;
}

// A value that cannot end the header line it is on (RFC 9110 §5.5: no CR, LF or NUL).
bool field_value_ok(std::string_view value) {
  return value.size() <= max_field_value &&
         value.find_first_of("\r\n", 0) == std::string_view::npos &&
         value.find('\0') == std::string_view::npos;
}

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    return std::nullopt;
  }
  return std::move(v.as_object());
}

const json::string* string_at(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

std::optional<std::uint64_t> count_at(const json::object& o, std::string_view key,
                                      std::uint64_t most) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (const auto* u = v->if_uint64(); u != nullptr && *u <= most) {
    return *u;
  }
  if (const auto* i = v->if_int64();
      i != nullptr && *i >= 0 && static_cast<std::uint64_t>(*i) <= most) {
    return static_cast<std::uint64_t>(*i);
  }
  return std::nullopt;
}

// "0-N" with N from 1, without leading zeros.
std::optional<std::uint64_t> entry_seq(std::string_view id) {
  if (!id.starts_with("0-") || id.size() < 3 || id[2] == '0') {
    return std::nullopt;
  }
  std::uint64_t n = 0;
  const auto digits = id.substr(2);
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) {
    return std::nullopt;
  }
  return n;
}

std::string sha256_hex(std::string_view data) {
  const auto d = sha256_of(data);
  std::string hex;
  hex.reserve(64);
  for (const auto byte : d) {
    hex += fmt::format("{:02x}", byte);
  }
  return hex;
}

}  // namespace

redis_journal_keys redis_journal_keys_for(std::string_view stream_key, std::string_view digest) {
  std::string identity(stream_key);
  identity += '\0';
  identity += digest;
  const auto hex = sha256_hex(identity);
  return redis_journal_keys{"nines:j:{" + hex + "}:m", "nines:j:{" + hex + "}:e"};
}

std::string_view journal_append_script() {
  return script;
}

std::size_t append_journal_write(std::string& wire, const redis_journal_keys& keys,
                                 std::string_view owner, std::string_view script_sha,
                                 std::uint64_t ttl_ms, std::uint64_t lease_ms,
                                 const redis_journal_write& w, std::size_t max_events) {
  max_events = std::max<std::size_t>(max_events, 1);
  const std::string ttl = std::to_string(ttl_ms);
  const std::string lease = std::to_string(lease_ms);
  std::size_t commands = 0;
  std::size_t from = 0;
  do {
    const std::size_t to = std::min(w.events.size(), from + max_events);
    const bool first = from == 0;
    const bool last = to == w.events.size();
    const std::string seq = std::to_string(w.first_seq + from);
    std::vector<std::string_view> words{"EVALSHA",   script_sha, "2", keys.meta,
                                        keys.events, owner,      ttl, lease};
    words.push_back(first && w.head ? std::string_view(*w.head) : std::string_view{});
    words.push_back(last && w.end ? std::string_view(*w.end) : std::string_view{});
    words.push_back(first && w.broken ? "1" : "");
    words.push_back(seq);
    for (std::size_t i = from; i < to; ++i) {
      words.push_back(w.events[i]);
    }
    if (append_redis_command(wire, words)) {
      ++commands;
    }
    from = to;
  } while (from < w.events.size());
  return commands;
}

std::string encode_journal_head(const journal_head& head) {
  json::object o;
  o["status"] = head.status;
  o["stream"] = head.stream;
  json::array fields;
  for (const auto& [name, value] : head.fields) {
    fields.push_back(json::array{json::string(name), json::string(value)});
  }
  o["fields"] = std::move(fields);
  return json::serialize(o);
}

std::optional<journal_head> decode_journal_head(std::string_view text) {
  const auto o = parse_object(text);
  if (!o) {
    return std::nullopt;
  }
  journal_head head;
  const auto status = count_at(*o, "status", 599);
  const auto* stream = o->if_contains("stream");
  const auto* fields = o->if_contains("fields");
  if (!status || *status < 100 || stream == nullptr || !stream->is_bool() || fields == nullptr ||
      !fields->is_array() || fields->as_array().size() > max_fields) {
    return std::nullopt;
  }
  head.status = static_cast<unsigned>(*status);
  head.stream = stream->as_bool();
  for (const auto& f : fields->as_array()) {
    const auto* pair = f.if_array();
    if (pair == nullptr || pair->size() != 2 || !(*pair)[0].is_string() ||
        !(*pair)[1].is_string()) {
      return std::nullopt;
    }
    const std::string_view name = (*pair)[0].as_string();
    const std::string_view value = (*pair)[1].as_string();
    if (!field_name_ok(name) || !field_value_ok(value)) {
      return std::nullopt;
    }
    head.fields.emplace_back(std::string(name), std::string(value));
  }
  return head;
}

std::string encode_journal_end(const journal_summary& s, std::string_view body) {
  json::object o;
  o["outcome"] = s.outcome;
  o["attempts"] = s.attempts;
  o["resumes"] = s.resumes;
  json::array upstreams;
  for (const auto& u : s.upstreams) {
    upstreams.push_back(json::string(u));
  }
  o["upstreams"] = std::move(upstreams);
  o["served_by"] = s.served_by;
  o["resume_log"] = s.resume_log;
  o["detail"] = s.detail;
  o["body"] = body;
  return json::serialize(o);
}

std::optional<journal_end_record> decode_journal_end(std::string_view text) {
  const auto o = parse_object(text);
  if (!o) {
    return std::nullopt;
  }
  journal_end_record out;
  const auto* outcome = string_at(*o, "outcome");
  const auto attempts = count_at(*o, "attempts", 1u << 20);
  const auto resumes = count_at(*o, "resumes", 1u << 20);
  const auto* upstreams = o->if_contains("upstreams");
  const auto* served_by = string_at(*o, "served_by");
  const auto* resume_log = string_at(*o, "resume_log");
  const auto* detail = string_at(*o, "detail");
  const auto* body = string_at(*o, "body");
  if (outcome == nullptr || !attempts || !resumes || upstreams == nullptr ||
      !upstreams->is_array() || upstreams->as_array().size() > max_upstreams ||
      served_by == nullptr || resume_log == nullptr || detail == nullptr || body == nullptr) {
    return std::nullopt;
  }
  out.summary.outcome = std::string(*outcome);
  out.summary.attempts = static_cast<unsigned>(*attempts);
  out.summary.resumes = static_cast<unsigned>(*resumes);
  for (const auto& u : upstreams->as_array()) {
    if (!u.is_string()) {
      return std::nullopt;
    }
    out.summary.upstreams.emplace_back(u.as_string());
  }
  out.summary.served_by = std::string(*served_by);
  out.summary.resume_log = std::string(*resume_log);
  out.summary.detail = std::string(*detail);
  out.body = std::string(*body);
  return out;
}

std::vector<std::string> journal_meta_command(const redis_journal_keys& keys) {
  return {"HMGET", keys.meta, "head", "broken", "owner"};
}

redis_journal_meta parse_journal_meta(const redis_reply& reply) {
  redis_journal_meta out;
  using kind = redis_reply::kind;
  if (reply.type != kind::array || reply.elements.size() != 3) {
    out.malformed = true;
    return out;
  }
  const auto& head = reply.elements[0];
  const auto& broken = reply.elements[1];
  const auto& owner = reply.elements[2];
  for (const auto* e : {&head, &broken, &owner}) {
    if (e->type != kind::string && e->type != kind::nil) {
      out.malformed = true;
      return out;
    }
  }
  out.present = owner.type == kind::string;
  out.broken = broken.type == kind::string && broken.text == "1";
  if (head.type == kind::string) {
    out.head = decode_journal_head(head.text);
    out.malformed = !out.head;
  }
  return out;
}

std::vector<std::string> journal_follow_command(const redis_journal_keys& keys, std::uint64_t after,
                                                std::size_t count,
                                                std::optional<std::uint64_t> block_ms) {
  std::vector<std::string> words{"XREAD", "COUNT", std::to_string(count)};
  if (block_ms) {
    words.emplace_back("BLOCK");
    words.push_back(std::to_string(*block_ms));
  }
  words.emplace_back("STREAMS");
  words.push_back(keys.events);
  words.push_back("0-" + std::to_string(after));
  return words;
}

redis_journal_read parse_journal_follow(const redis_reply& reply, std::uint64_t after) {
  using kind = redis_reply::kind;
  redis_journal_read out;
  out.last = after;
  if (reply.type == kind::nil) {
    return out;  // nothing new within the BLOCK
  }
  if (reply.type != kind::array || reply.elements.size() != 1 ||
      reply.elements[0].type != kind::array || reply.elements[0].elements.size() != 2 ||
      reply.elements[0].elements[1].type != kind::array) {
    out.malformed = true;
    return out;
  }
  for (const auto& entry : reply.elements[0].elements[1].elements) {
    if (entry.type != kind::array || entry.elements.size() != 2 ||
        entry.elements[0].type != kind::string || entry.elements[1].type != kind::array ||
        entry.elements[1].elements.size() != 2 ||
        entry.elements[1].elements[0].type != kind::string ||
        entry.elements[1].elements[1].type != kind::string) {
      out.malformed = true;
      return out;
    }
    const auto seq = entry_seq(entry.elements[0].text);
    const auto& field = entry.elements[1].elements[0].text;
    const auto& value = entry.elements[1].elements[1].text;
    if (!seq || *seq <= out.last) {
      out.malformed = true;  // XREAD returns ids after the one asked, in order
      return out;
    }
    if (*seq != out.last + 1 || field == "g") {
      out.incomplete = true;  // a jump: the copy misses events
      return out;
    }
    if (field == "d") {
      out.events += value;
      out.last = *seq;
    } else if (field == "x") {
      out.end = decode_journal_end(value);
      out.malformed = !out.end;
      return out;
    } else {
      out.malformed = true;
      return out;
    }
  }
  return out;
}

namespace {

std::string claim_key(std::string_view scoped_key) {
  return "nines:i:{" + sha256_hex(scoped_key) + "}";
}

std::string claim_value(std::string_view stream_key, std::string_view digest) {
  std::string value(stream_key);
  value += '\n';
  value += digest;
  return value;
}

}  // namespace

std::vector<std::string> idempotency_claim_command(std::string_view scoped_key,
                                                   std::string_view stream_key,
                                                   std::string_view digest, std::uint64_t ttl_ms) {
  return {"SET",
          claim_key(scoped_key),
          claim_value(stream_key, digest),
          "NX",
          "GET",
          "PX",
          std::to_string(std::max<std::uint64_t>(ttl_ms, 1))};
}

std::vector<std::string> idempotency_release_command(std::string_view scoped_key,
                                                     std::string_view stream_key,
                                                     std::string_view digest) {
  return {"EVAL",
          "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
          "return 0",
          "1", claim_key(scoped_key), claim_value(stream_key, digest)};
}

idempotency_claim parse_idempotency_claim(const redis_reply& reply, std::string_view digest) {
  idempotency_claim out;
  if (reply.type == redis_reply::kind::nil) {
    out.type = idempotency_claim::kind::ours;  // set: nobody had it
    return out;
  }
  if (reply.type != redis_reply::kind::string) {
    return out;
  }
  const std::string_view value = reply.text;
  const auto cut = value.find('\n');
  if (cut == std::string_view::npos || cut == 0 || cut > 256) {
    return out;
  }
  const auto key = value.substr(0, cut);
  for (const unsigned char c : key) {
    if (c < 0x20 || c >= 0x7f) {
      return out;
    }
  }
  out.type = value.substr(cut + 1) == digest ? idempotency_claim::kind::elsewhere
                                             : idempotency_claim::kind::conflict;
  out.stream_key = std::string(key);
  return out;
}

std::vector<std::string> journal_takeover_command(const redis_journal_keys& keys,
                                                  std::string_view taker, std::uint64_t lease_ms,
                                                  std::uint64_t ttl_ms) {
  return {"EVAL",
          std::string(takeover_script),
          "2",
          keys.meta,
          keys.events,
          std::string(taker),
          std::to_string(lease_ms),
          std::to_string(ttl_ms)};
}

journal_takeover parse_journal_takeover(const redis_reply& reply) {
  using kind = redis_reply::kind;
  journal_takeover out;
  if (reply.type != kind::array || reply.elements.empty() || reply.elements.size() > 3) {
    return out;
  }
  for (const auto& e : reply.elements) {
    if (e.type != kind::string) {
      return out;
    }
  }
  const auto& verdict = reply.elements[0].text;
  const auto size = reply.elements.size();
  if ((verdict == "absent" || verdict == "ended") && size == 1) {
    out.type = verdict == "absent" ? journal_takeover::kind::absent : journal_takeover::kind::ended;
  } else if (verdict == "held" && size == 2) {
    out.type = journal_takeover::kind::held;
    out.leased = reply.elements[1].text != "-1";
  } else if (verdict == "ours" && size == 3) {
    const auto last = parse_count(reply.elements[2].text);
    const auto& owner = reply.elements[1].text;
    if (!last || owner.empty() || owner.size() > 128) {
      return out;
    }
    out.type = journal_takeover::kind::ours;
    out.owner = owner;
    out.last = *last;
  }
  return out;
}

}  // namespace nines::core
