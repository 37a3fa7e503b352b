#pragma once
// What a journaled answer looks like in Redis (the shared journal, gateway/journal_store.hpp), and
// the commands that write and read it. No I/O here.
//
// Each answer has two keys, hash-tagged alike so that a Redis Cluster keeps them on one slot:
//   nines:j:{H}:m   a hash: owner (the gateway replica writing it: the fencing token), lease
//                   (until when, in Redis's clock, the owner holds it), epoch (takeovers so far),
//                   head (status and fields, as JSON), last (the last event appended), ended,
//                   broken
//   nines:j:{H}:e   a Redis stream: event N is the entry 0-N with field d (its SSE bytes, as the
//                   client received them); after the last event one more entry: x (the end: the
//                   generation's summary and, for a whole answer, its body, as JSON) or g (the
//                   copy is incomplete: events were lost on the way to Redis)
// H is the SHA-256 of the stream key and the request's digest (its credentials, route and body,
// gateway/journal_relay.cpp): a reconnect finds the answer only with the same request and the
// same credentials, and two requests that chose the same X-Request-Id never share keys.
//
// Writes go through one Lua script (journal_append_script): it refuses a writer that is not the
// answer's owner (fencing), skips events already there (a batch sent again after a broken
// connection is idempotent), turns a gap into the g entry (never a silent jump), accepts nothing
// after the end, renews both keys' expiry and, while the answer runs, its owner's lease (every
// write does; a writer with nothing to write renews with an empty call).
//
// Ownership survives its owner (journal_takeover_script): once the lease has run out on an answer
// that did not end, another replica may take it over. The script makes it the owner under a new
// token (the taker's id and the next epoch), so that the old owner, should it wake, is fenced off:
// its writes are refused and nothing of it lands after the taker's.
//
// Everything read back is checked as hostile input: shapes, ids in order, header fields that
// could not end a header line.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/redis/redis_reply.hpp"
#include "core/stream/stream_journal.hpp"

namespace nines::core {

struct redis_journal_keys {
  std::string meta;
  std::string events;
};
redis_journal_keys redis_journal_keys_for(std::string_view stream_key, std::string_view digest);

// The Lua text; a writer loads it (SCRIPT LOAD) on every new connection and calls it by its SHA1.
std::string_view journal_append_script();

// What a writer appends to one answer in one call.
struct redis_journal_write {
  std::optional<std::string> head;  // encode_journal_head
  std::uint64_t first_seq = 1;      // the sequence number of events.front()
  std::vector<std::string> events;  // one SSE event each
  std::optional<std::string> end;   // encode_journal_end
  bool broken = false;              // events were lost before these: mark the copy incomplete
  std::string owner;                // who writes (a takeover's token); empty: the writer itself
};

// Appends the EVALSHA command(s) for `w` to `wire` (a long run of events is split into several
// calls, each at most `max_events` events); returns how many commands. Each renews the owner's
// lease for `lease_ms` (0: the answer has no lease, and is never taken over).
std::size_t append_journal_write(std::string& wire, const redis_journal_keys& keys,
                                 std::string_view owner, std::string_view script_sha,
                                 std::uint64_t ttl_ms, std::uint64_t lease_ms,
                                 const redis_journal_write& w, std::size_t max_events = 256);

std::string encode_journal_head(const journal_head& head);
std::optional<journal_head> decode_journal_head(std::string_view json);

struct journal_end_record {
  journal_summary summary;
  std::string body;  // a whole answer's body; empty for a stream
};
std::string encode_journal_end(const journal_summary& summary, std::string_view body);
std::optional<journal_end_record> decode_journal_end(std::string_view json);

// HMGET meta head broken ended: the answer's head (nullopt when the answer is not there).
struct redis_journal_meta {
  std::optional<journal_head> head;
  bool present = false;  // the hash exists (an answer whose head is not written yet has none)
  bool broken = false;
  bool malformed = false;
};
std::vector<std::string> journal_meta_command(const redis_journal_keys& keys);
redis_journal_meta parse_journal_meta(const redis_reply& reply);

// XREAD [BLOCK ms] COUNT n STREAMS events 0-after.
std::vector<std::string> journal_follow_command(const redis_journal_keys& keys, std::uint64_t after,
                                                std::size_t count,
                                                std::optional<std::uint64_t> block_ms);
// What an XREAD (or nil, when BLOCK timed out) brought, with `after` the last event already had.
struct redis_journal_read {
  std::string events;                     // the next events, in order, concatenated
  std::uint64_t last = 0;                 // the last event in `events` (`after` when none)
  std::optional<journal_end_record> end;  // the x entry came
  bool incomplete = false;                // the g entry came, or an id jumped: events are missing
  bool malformed = false;                 // not a shape this writer makes
};
redis_journal_read parse_journal_follow(const redis_reply& reply, std::uint64_t after);

// Idempotency-Key across replicas: the first replica to claim a key produces the answer; another
// that gets the same key follows the first one's copy instead of starting a generation.
//   SET nines:i:{SHA-256 of the scoped key} "<stream key>\n<request digest>" NX GET PX ttl
std::vector<std::string> idempotency_claim_command(std::string_view scoped_key,
                                                   std::string_view stream_key,
                                                   std::string_view digest, std::uint64_t ttl_ms);
struct idempotency_claim {
  enum class kind : std::uint8_t {
    ours,       // the claim is this replica's: generate
    elsewhere,  // another replica's, for the same request: follow `stream_key`'s copy
    conflict,   // another replica's, for another request under the same key: 422
    unknown,    // not an answer this layout gives (the caller generates, as with Redis away)
  };
  kind type = kind::unknown;
  std::string stream_key;
};
idempotency_claim parse_idempotency_claim(const redis_reply& reply, std::string_view digest);
// Gives the claim up (a failed generation: the client's retry deserves a new one, on any
// replica), only if it is still the one made for `stream_key`.
std::vector<std::string> idempotency_release_command(std::string_view scoped_key,
                                                     std::string_view stream_key,
                                                     std::string_view digest);

// Taking over an answer whose owner's lease ran out (EVAL: rare, so not loaded).
std::vector<std::string> journal_takeover_command(const redis_journal_keys& keys,
                                                  std::string_view taker, std::uint64_t lease_ms,
                                                  std::uint64_t ttl_ms);
struct journal_takeover {
  enum class kind : std::uint8_t {
    absent,     // no such answer
    ended,      // it ended: nothing to take over
    held,       // its owner's lease runs (or it has none: an owner that never takes leases)
    ours,       // taken: write under `owner`, after event `last`
    malformed,  // not an answer the script gives
  };
  kind type = kind::malformed;
  bool leased = false;  // held by a lease that runs: its owner lives
  std::string owner;
  std::uint64_t last = 0;
};
journal_takeover parse_journal_takeover(const redis_reply& reply);

}  // namespace nines::core
