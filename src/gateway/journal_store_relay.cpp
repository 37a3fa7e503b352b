#include "gateway/journal_store_relay.hpp"

#include <algorithm>

#include "gateway/journal_answer.hpp"

namespace nines::gateway {
namespace {

using namespace net;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr auto connect_within = milliseconds(1000);
constexpr auto claim_within = milliseconds(250);
constexpr auto round_trip = milliseconds(2000);
// How long a read blocks in Redis for the next entries (then the reader looks at its clocks).
constexpr std::uint64_t follow_block_ms = 500;
constexpr std::size_t entries_per_read = 32;

class reader_slot {
 public:
  explicit reader_slot(journal_store& store) : store_(store) {}
  ~reader_slot() { store_.release_reader_slot(); }
  reader_slot(const reader_slot&) = delete;
  reader_slot& operator=(const reader_slot&) = delete;

 private:
  journal_store& store_;
};

awaitable<std::optional<core::redis_journal_meta>> read_meta(redis_connection& conn,
                                                             const core::redis_journal_keys& keys) {
  std::vector<std::string> words = core::journal_meta_command(keys);
  std::optional<core::redis_reply> reply =
      co_await conn.call(std::move(words), steady::now() + round_trip);
  if (!reply) {
    co_return std::nullopt;
  }
  co_return core::parse_journal_meta(*reply);
}

// Every event of a stream this replica just took over, 1..last, into `out`; false when the copy
// is not one this gateway writes, misses events, or is longer than `most` bytes.
awaitable<bool> read_back(redis_connection& conn, const core::redis_journal_keys& keys,
                          std::uint64_t last, std::size_t most, std::string& out) {
  std::uint64_t at = 0;
  while (at < last) {
    std::vector<std::string> words =
        core::journal_follow_command(keys, at, entries_per_read, std::nullopt);
    std::optional<core::redis_reply> reply =
        co_await conn.call(std::move(words), steady::now() + round_trip);
    if (!reply) {
      co_return false;
    }
    auto got = core::parse_journal_follow(*reply, at);
    if (got.malformed || got.incomplete || got.end || got.last == at ||
        out.size() + got.events.size() > most) {
      co_return false;
    }
    out += got.events;
    at = got.last;
  }
  co_return at == last;
}

}  // namespace

awaitable<bool> serve_from_store(journal_store& store, core::redis_journal_keys keys,
                                 std::uint64_t after, response_sink& client, worker_state& worker,
                                 obs::request_record& record, std::optional<milliseconds> heartbeat,
                                 milliseconds arrival, store_takeover* takeover) {
  const auto& cfg = *worker.gen->config;
  const auto start = steady::now();
  const auto give_up = start + cfg.timeouts.request;
  if (!store.take_reader_slot()) {
    worker.probe.journal_refused("store_busy");
    co_await end_unserved(client, record, false, http::status::service_unavailable,
                          "upstream_unavailable", "journal_store_busy",
                          "too many reconnects are reading from the shared journal "
                          "(journal.store_max_readers); retry");
    co_return true;
  }
  reader_slot slot(store);
  std::optional<redis_endpoint> at = store.primary();
  std::unique_ptr<redis_connection> conn;
  std::string why;
  // What one read may bring: its entries, each at most an event (limits.max_event_bytes) and its
  // framing; Redis cannot make a reader hold more.
  core::redis_reader_limits limits;
  limits.max_bytes = entries_per_read * (cfg.limits.max_event_bytes + 4096);
  limits.max_elements = entries_per_read * 8 + 16;
  if (at) {
    conn = co_await redis_connection::open(std::move(*at), steady::now() + connect_within, why,
                                           limits);
  }
  std::optional<core::redis_journal_meta> meta;
  if (conn) {
    meta = co_await read_meta(*conn, keys);
  }
  // Its copy may be on its way (queued by its producer, or not begun: a duplicate of an
  // Idempotency-Key waits for the first replica's first byte): wait for its first entry, then
  // look again, for at most `arrival`.
  const auto arrived_by = steady::now() + arrival;
  while (meta && !meta->malformed && !meta->head && !meta->broken && steady::now() < arrived_by) {
    const auto left = std::chrono::duration_cast<milliseconds>(arrived_by - steady::now());
    const auto block = static_cast<std::uint64_t>(std::clamp<long long>(left.count(), 1, 1000));
    std::vector<std::string> words = core::journal_follow_command(keys, 0, 1, block);
    const auto by = steady::now() + milliseconds(block) + round_trip;
    std::optional<core::redis_reply> arrived = co_await conn->call(std::move(words), by);
    meta.reset();
    if (arrived) {
      meta = co_await read_meta(*conn, keys);
    }
  }
  if (!meta) {
    worker.probe.journal_refused("store_unavailable");
    co_await end_unserved(client, record, false, http::status::service_unavailable,
                          "upstream_unavailable", "journal_store_unavailable",
                          "this replica does not hold the stream and the shared journal cannot "
                          "be reached; retry");
    co_return true;
  }
  if (meta->malformed) {
    worker.probe.journal_refused("store_malformed");
    co_await end_unserved(client, record, false, http::status::bad_gateway, "upstream_error",
                          "journal_store_malformed",
                          "the shared journal answered with a record this gateway does not write");
    co_return true;
  }
  if (!meta->present) {
    co_return false;
  }
  if (meta->broken || !meta->head) {
    worker.probe.journal_refused("store_incomplete");
    co_await end_unserved(client, record, false, http::status::gone, "stream_expired",
                          "journal_incomplete",
                          "the shared journal's copy of this stream misses events");
    co_return true;
  }
  const core::journal_head head = std::move(*meta->head);
  worker.probe.journal_replay("store");
  record.journal = "store";
  bool begun = false;
  auto last_progress = steady::now();
  for (;;) {
    if (head.stream && !begun) {
      begun = true;
      if (co_await begin_journaled_stream(head, client, worker, record, heartbeat, start)) {
        break;
      }
    }
    std::vector<std::string> words =
        core::journal_follow_command(keys, after, entries_per_read, follow_block_ms);
    const auto by = steady::now() + milliseconds(follow_block_ms) + round_trip;
    std::optional<core::redis_reply> reply = co_await conn->call(std::move(words), by);
    if (!reply) {
      co_await end_unserved(client, record, begun, http::status::service_unavailable,
                            "upstream_unavailable", "journal_store_lost",
                            "the shared journal became unreachable while this stream was read "
                            "from it");
      break;
    }
    auto got = core::parse_journal_follow(*reply, after);
    if (!got.events.empty() && !got.end && (got.incomplete || got.malformed)) {
      // What came before the problem is what the producer wrote: the client gets it first.
      if (co_await client.write_chunk(got.events)) {
        break;
      }
    }
    if (got.malformed) {
      worker.probe.journal_refused("store_malformed");
      co_await end_unserved(client, record, begun, http::status::bad_gateway, "upstream_error",
                            "journal_store_malformed",
                            "the shared journal answered with a record this gateway does not "
                            "write");
      break;
    }
    if (got.incomplete) {
      worker.probe.journal_refused("store_incomplete");
      co_await end_unserved(client, record, begun, http::status::gone, "stream_expired",
                            "journal_incomplete",
                            "the shared journal's copy of this stream misses events");
      break;
    }
    after = got.last;
    if (got.end) {
      if (head.stream) {
        co_await client.finish_stream(got.events);
      } else {
        co_await send_journaled_whole(head, std::move(got.end->body), client, record);
      }
      take_journal_summary(record, got.end->summary);
      break;
    }
    auto now = steady::now();
    if (!got.events.empty()) {
      last_progress = now;
      if (co_await client.write_chunk(got.events)) {
        break;
      }
      continue;
    }
    if (takeover != nullptr && head.stream) {
      // Silence: is its producer still there?
      std::vector<std::string> ask =
          core::journal_takeover_command(keys, store.id(), store.lease_ms(), store.ttl_ms());
      std::optional<core::redis_reply> verdict =
          co_await conn->call(std::move(ask), steady::now() + round_trip);
      const auto t = verdict ? core::parse_journal_takeover(*verdict) : core::journal_takeover{};
      now = steady::now();
      if (t.type == core::journal_takeover::kind::held && t.leased) {
        last_progress = now;  // it renews its lease: a slow model, not a dead replica
      } else if (t.type == core::journal_takeover::kind::ours) {
        std::string events;
        if (!co_await read_back(*conn, keys, t.last, cfg.journal.max_bytes, events)) {
          // Nobody can continue it: marked incomplete, so that every reader hears the same.
          core::redis_journal_write mark;
          mark.first_seq = t.last + 1;
          mark.broken = true;
          mark.owner = t.owner;
          store.queue(keys, std::move(mark));
          worker.probe.journal_refused("store_incomplete");
          co_await end_unserved(client, record, begun, http::status::gone, "stream_expired",
                                "journal_incomplete",
                                "the shared journal's copy of this stream cannot be continued: "
                                "it misses events or is too long");
          break;
        }
        takeover->owner = t.owner;
        takeover->head = head;
        takeover->events = std::move(events);
        takeover->last = t.last;
        takeover->sent = after;
        co_return true;
      }
    }
    if (now - last_progress > cfg.timeouts.stream_idle || now > give_up) {
      co_await end_unserved(client, record, begun, http::status::gateway_timeout,
                            "upstream_unavailable", "journal_stalled",
                            "the replica producing this stream stopped writing it to the shared "
                            "journal");
      break;
    }
  }
  co_return true;
}

namespace {

// One command on a connection of its own to the primary, all within `within`; nullopt when
// Redis is away, slow or broke off.
awaitable<std::optional<core::redis_reply>> call_primary(journal_store& store,
                                                         std::vector<std::string> words,
                                                         milliseconds within) {
  std::optional<redis_endpoint> at = store.primary();
  if (!at) {
    co_return std::nullopt;
  }
  const auto by = steady::now() + within;
  std::string why;
  std::unique_ptr<redis_connection> conn = co_await redis_connection::open(std::move(*at), by, why);
  if (!conn) {
    co_return std::nullopt;
  }
  co_return co_await conn->call(std::move(words), by);
}

}  // namespace

awaitable<core::idempotency_claim> claim_idempotency(journal_store& store, std::string scoped_key,
                                                     std::string stream_key, std::string digest,
                                                     milliseconds ttl) {
  std::vector<std::string> words = core::idempotency_claim_command(
      scoped_key, stream_key, digest, static_cast<std::uint64_t>(ttl.count()));
  std::optional<core::redis_reply> reply =
      co_await call_primary(store, std::move(words), claim_within);
  auto claim = reply ? core::parse_idempotency_claim(*reply, digest) : core::idempotency_claim{};
  if (claim.type == core::idempotency_claim::kind::unknown) {
    claim.type = core::idempotency_claim::kind::ours;  // as with Redis away: generate
  }
  co_return claim;
}

awaitable<bool> release_idempotency(journal_store& store, std::string scoped_key,
                                    std::string stream_key, std::string digest) {
  std::vector<std::string> words =
      core::idempotency_release_command(scoped_key, stream_key, digest);
  std::optional<core::redis_reply> reply =
      co_await call_primary(store, std::move(words), claim_within);
  co_return reply && reply->type == core::redis_reply::kind::integer;
}

}  // namespace nines::gateway
