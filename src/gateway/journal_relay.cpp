#include "gateway/journal_relay.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <boost/asio/post.hpp>

#include "core/http/openai_error.hpp"
#include "core/stream/stream_journal.hpp"
#include "gateway/journal_answer.hpp"
#include "gateway/journal_store.hpp"
#include "gateway/journal_store_relay.hpp"
#include "net/spawn.hpp"
#include "net/thread_waker.hpp"

namespace nines::gateway {
namespace {

// How often a relay waiting for its generation looks whether the replica's drain ran out.
constexpr auto cut_check_every = std::chrono::milliseconds(500);

using namespace net;
using steady = std::chrono::steady_clock;

std::optional<std::string_view> header(const request& req, std::string_view name) {
  const auto it = req.find(name);
  if (it == req.end()) {
    return std::nullopt;
  }
  return std::string_view(it->value());
}

// SHA-256 over the parts, each followed by a NUL, as hex.
std::string sha256_hex(std::initializer_list<std::string_view> parts) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (auto p : parts) {
    EVP_DigestUpdate(ctx, p.data(), p.size());
    EVP_DigestUpdate(ctx, "", 1);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(ctx, digest, &size);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  for (unsigned i = 0; i < size; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return hex;
}

// A request's identity for the journal: its credentials (so that nobody reads another client's
// answer by guessing its id or key), its route and its body.
std::string request_digest(const request& req) {
  return sha256_hex(
      {header(req, "authorization").value_or(""), req.method_string(), req.target(), req.body()});
}

// Idempotency keys are per credentials, as in the APIs that defined them.
std::string scoped_idempotency_key(const request& req, std::string_view key) {
  return sha256_hex({header(req, "authorization").value_or("")}) + "/" + std::string(key);
}

core::journal_head head_of(const http::response_header<>& h, bool stream) {
  core::journal_head head;
  head.status = h.result_int();
  head.stream = stream;
  for (const auto& f : h) {
    head.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
  }
  return head;
}

core::journal_summary summary_of(const obs::request_record& r) {
  return core::journal_summary{
      std::string(r.outcome), r.attempts, r.resumes, r.upstreams, r.served_by,
      r.resume_log,           r.detail};
}

// The copy of a journaled answer in the shared journal (gateway/journal_store.hpp): what goes into
// the journal entry is queued for Redis as well, numbered as the entry numbers its events (one
// per "\n\n"). Queueing never waits; once the store says the copy is incomplete (its queue was
// full) nothing more is queued for it.
class store_copy {
 public:
  // A takeover's copy goes on after event `next_seq` - 1 under the token `owner`.
  store_copy(journal_store& store, core::redis_journal_keys keys, std::uint64_t next_seq = 1,
             std::string owner = {})
      : store_(store), keys_(std::move(keys)), owner_(std::move(owner)), next_seq_(next_seq) {}

  // A takeover's first write, before anything is generated: it holds the lease from now on
  // (renewed by the store), however long the continuation takes to its first token.
  void hold() {
    core::redis_journal_write w;
    w.first_seq = next_seq_;
    put(std::move(w));
  }
  void head(const core::journal_head& h) {
    core::redis_journal_write w;
    w.head = core::encode_journal_head(h);
    w.first_seq = next_seq_;
    put(std::move(w));
  }
  void events(std::string_view data, const core::journal_summary* end, std::string_view body = {}) {
    core::redis_journal_write w;
    w.first_seq = next_seq_;
    while (!data.empty()) {
      const auto cut = data.find("\n\n");
      const auto size = cut == std::string_view::npos ? data.size() : cut + 2;
      w.events.emplace_back(data.substr(0, size));
      data.remove_prefix(size);
    }
    next_seq_ += w.events.size();
    if (end != nullptr) {
      w.end = core::encode_journal_end(*end, body);
    }
    put(std::move(w));
  }

 private:
  void put(core::redis_journal_write w) {
    w.owner = owner_;
    if (!incomplete_ && !store_.queue(keys_, std::move(w))) {
      incomplete_ = true;
    }
  }
  journal_store& store_;
  core::redis_journal_keys keys_;
  std::string owner_;
  std::uint64_t next_seq_ = 1;
  bool incomplete_ = false;
};

// The generation's side: what the attempt loop writes goes into the journal entry (and its copy
// in the shared journal, when there is one). While a client is attached and the journal is full
// of what attached clients have not read yet, it waits for them (at most `patience` per write: a
// reader that slow is stalled, and the journal's last resort drops its oldest unread events);
// otherwise it never blocks on a client. It fails (and the attempt loop closes its upstream) once
// the entry has been without a client for the ttl.
class journal_sink final : public response_sink {
 public:
  journal_sink(std::shared_ptr<core::journal_entry> entry, const obs::request_record& record,
               std::chrono::milliseconds patience, std::chrono::milliseconds recheck,
               std::optional<store_copy> copy)
      : entry_(std::move(entry)),
        record_(record),
        patience_(patience),
        recheck_(recheck),
        copy_(std::move(copy)) {}

  awaitable<error_code> send(http::response<http::string_body> response) override {
    const auto head = head_of(response.base(), false);
    co_await when_room([&](std::function<void()> waker) {
      return entry_->commit_head(head, steady::now(), std::move(waker));
    });
    const auto summary = summary_of(record_);
    co_await when_room([&](std::function<void()> waker) {
      return entry_->finish(response.body(), summary, steady::now(), std::move(waker));
    });
    if (copy_) {
      copy_->head(head);
      copy_->events({}, &summary, response.body());
    }
    finished_ = true;
    co_return error_code{};
  }
  awaitable<error_code> begin_stream(http::response<http::empty_body> header) override {
    const auto head = head_of(header.base(), true);
    co_await when_room([&](std::function<void()> waker) {
      return entry_->commit_head(head, steady::now(), std::move(waker));
    });
    if (copy_) {
      copy_->head(head);
    }
    co_return error_code{};
  }
  awaitable<error_code> write_chunk(std::string_view data) override {
    co_await when_room([&](std::function<void()> waker) {
      return entry_->append_events(data, steady::now(), std::move(waker));
    });
    if (copy_) {
      copy_->events(data, nullptr);
    }
    co_return error_code{};
  }
  awaitable<error_code> end_stream() override { co_return co_await finish_stream({}); }
  awaitable<error_code> finish_stream(std::string_view data) override {
    const auto summary = summary_of(record_);
    co_await when_room([&](std::function<void()> waker) {
      return entry_->finish(data, summary, steady::now(), std::move(waker));
    });
    if (copy_) {
      copy_->events(data, &summary);
    }
    finished_ = true;
    co_return error_code{};
  }
  // Journaled requests are OpenAI streams (chunks or Responses), which always end with an event
  // of their own (core/stream/stream_dialect.hpp): the journal never holds a stream to cut.
  void break_stream() override {}
  bool failed() const override { return entry_->cancelled(steady::now()); }
  bool finished() const override { return finished_; }
  unsigned version() const override { return 11; }

  // From now on, what goes into the entry is copied to Redis as `copy` says (a stream this
  // replica took over).
  void copy_to(store_copy copy) {
    copy_.emplace(std::move(copy));
    copy_->hold();
  }

  // The end of a generation that stopped unfinished (nobody was left to read it).
  void cancel(const core::journal_summary& summary) {
    entry_->finish({}, summary, steady::now());
    if (copy_) {
      copy_->events({}, &summary);
    }
  }

 private:
  // Runs `op(waker)` (an entry call that adds to the journal) until it goes in, waiting for
  // active readers while the journal is full of what they have not read yet: woken when one reads,
  // and looking again every `recheck_` (a reader may have stalled meanwhile, and then holds nobody
  // back); at most `patience_`, and not at all without a reader attached; then `op({})`, which
  // insists.
  template <class Op>
  awaitable<void> when_room(Op op) {
    const auto give_up = steady::now() + patience_;
    while (entry_->clients() > 0 && steady::now() < give_up) {
      auto w = std::make_shared<thread_waker>(co_await asio::this_coro::executor);
      if (op(thread_waker::notifier(w))) {
        co_return;
      }
      co_await w->wait(std::min(give_up, steady::now() + recheck_));
    }
    op({});
  }

  std::shared_ptr<core::journal_entry> entry_;
  const obs::request_record& record_;
  std::chrono::milliseconds patience_;
  std::chrono::milliseconds recheck_;
  std::optional<store_copy> copy_;
  bool finished_ = false;
};

// A journaled generation: it owns the request (moved from the client's connection) and outlives
// the client if it has to.
struct journaled_generation {
  request req;
  obs::request_record record;
  std::shared_ptr<core::journal_entry> entry;
  journal_sink sink;
  // An answer the cache keeps: what the generation sends is recorded on its way to the journal.
  std::optional<answer_recorder> recorder;
  // The client's Idempotency-Key (scoped) when this replica claimed it in the shared journal:
  // given up again if the generation fails.
  std::optional<std::string> claimed;
  std::string digest;
  // Another replica's stream that this one took over: continued, not generated afresh.
  std::optional<stream_takeover> takeover;
  steady::time_point start = steady::now();

  journaled_generation(request r, const obs::request_record& client_record,
                       std::shared_ptr<core::journal_entry> e, std::chrono::milliseconds patience,
                       std::chrono::milliseconds recheck, std::optional<store_copy> copy)
      : req(std::move(r)),
        record(client_record),
        entry(std::move(e)),
        sink(entry, record, patience, recheck, std::move(copy)) {}
};

awaitable<void> run_generation(std::shared_ptr<journaled_generation> g, worker_state& worker,
                               request_kind kind) {
  response_sink& sink = g->recorder ? static_cast<response_sink&>(*g->recorder) : g->sink;
  co_await run_attempts(g->req, sink, worker, g->record, g->entry->stream_key(), kind,
                        g->takeover ? &*g->takeover : nullptr);
  if (!g->sink.finished()) {
    // Cancelled: nobody was left to read it. End the entry so that nothing waits for it.
    g->record.outcome = "cancelled";
    g->sink.cancel(summary_of(g->record));
  }
  if (g->claimed && g->entry->failed()) {
    std::string scoped = *g->claimed;
    std::string stream_key = g->entry->stream_key();
    std::string request = g->digest;
    co_await release_idempotency(*worker.shared->shared_journal, std::move(scoped),
                                 std::move(stream_key), std::move(request));
  }
  if (g->entry->clients() == 0) {
    // Its client left before the end: the generation gets an access-log line of its own.
    g->record.journal = "detached";
    g->record.duration_ms =
        std::chrono::duration<double, std::milli>(steady::now() - g->start).count();
    worker.access_log.append(g->record);
  }
}

// What follows the first `n` events of `events` (each ends with a blank line).
std::string_view events_after(std::string_view events, std::uint64_t n) {
  std::size_t at = 0;
  for (; n > 0 && at < events.size(); --n) {
    const auto end = events.find("\n\n", at);
    at = end == std::string_view::npos ? events.size() : end + 2;
  }
  return events.substr(at);
}

// A duplicate of an Idempotency-Key that another replica claimed: instead of a generation, the
// entry is fed from that replica's copy in the shared journal (its events, its ids), so that every
// client of the key gets the same bytes from one generation. Should that replica stop mid-stream,
// this one takes the stream over and continues it (gateway/journal_store_relay.hpp).
awaitable<void> follow_elsewhere(std::shared_ptr<journaled_generation> g, worker_state& worker,
                                 core::redis_journal_keys keys, request_kind kind) {
  auto& store = *worker.shared->shared_journal;
  const auto arrival = worker.gen->config->timeouts.first_byte + std::chrono::milliseconds(1000);
  store_takeover taken;
  const bool found = co_await serve_from_store(store, keys, 0, g->sink, worker, g->record,
                                               std::nullopt, arrival, &taken);
  if (found && !taken.owner.empty()) {
    // What the copy held beyond what was fed goes in first; then the generation goes on here.
    const std::string rest(events_after(taken.events, taken.sent));
    if (!rest.empty()) {
      co_await g->sink.write_chunk(rest);
    }
    worker.probe.journal_replay("takeover");
    g->record.journal = "takeover";
    g->sink.copy_to(store_copy(store, std::move(keys), taken.last + 1, taken.owner));
    g->takeover = stream_takeover{std::move(taken.events), taken.last, taken.head.status};
    co_await run_generation(g, worker, kind);
    co_return;
  }
  if (!found) {
    co_await end_unserved(g->sink, g->record, false, http::status::service_unavailable,
                          "upstream_unavailable", "idempotency_elsewhere",
                          "another replica is answering this Idempotency-Key and its copy cannot "
                          "be read yet; retry");
  }
  if (!g->sink.finished()) {
    g->record.outcome = "failed";
    g->sink.cancel(summary_of(g->record));
  }
}

// The client's side: reads the entry from `after` and writes it to the client as it grows. The
// caller has attached `reader` to the entry; it is detached here. With `begun`, the client has
// the stream's head already.
awaitable<void> relay_entry(std::shared_ptr<core::journal_entry> entry, std::uint64_t reader,
                            std::uint64_t after, downstream& client, worker_state& worker,
                            obs::request_record& record,
                            std::optional<std::chrono::milliseconds> heartbeat,
                            bool begun = false) {
  const auto& cfg = *worker.gen->config;
  const auto start = steady::now();
  const auto deadline = start + cfg.timeouts.request;
  auto w = std::make_shared<thread_waker>(co_await asio::this_coro::executor);
  // Called by the generation, possibly on another worker: wake this coroutine on its own thread.
  const auto notify = thread_waker::notifier(w);
  core::journal_entry::view v;
  for (;;) {
    v = entry->read(reader, after, steady::now(), notify);
    if (v.lost) {
      // The journal kept only the end of a very long stream (its memory bound).
      worker.probe.journal_refused("lost");
      co_await end_unserved(client, record, begun, http::status::gone, "stream_expired",
                            "journal_overflow",
                            "the journal no longer holds the events after this id");
      break;
    }
    if (v.head && !v.head->stream && v.ended) {
      co_await send_journaled_whole(*v.head, std::move(v.body), client, record);
      break;
    }
    if (v.head && v.head->stream) {
      if (!begun) {
        begun = true;
        if (co_await begin_journaled_stream(*v.head, client, worker, record, heartbeat, start)) {
          break;
        }
      }
      after = v.next_seq;
      if (v.ended) {
        co_await client.finish_stream(v.events);
        break;
      }
      if (!v.events.empty()) {
        if (co_await client.write_chunk(v.events)) {
          break;
        }
        continue;  // read again before waiting: more may have come meanwhile
      }
    }
    // Woken by the generation; meanwhile, every half second, a look at the drain.
    bool woken = false;
    bool cut = false;
    for (;;) {
      cut = begun && worker.shared->cutting.load(std::memory_order_relaxed);
      if (cut) {
        break;
      }
      woken = co_await w->wait(std::min(deadline, steady::now() + cut_check_every));
      if (woken || steady::now() >= deadline) {
        break;
      }
    }
    if (cut) {
      // This replica's drain ran out of time: the stream ends with an explicit break, which
      // another replica resumes from Last-Event-ID when the journal is shared.
      const bool shared = worker.shared->shared_journal != nullptr;
      co_await end_unserved(client, record, begun, http::status::service_unavailable,
                            "upstream_unavailable", "gateway_draining",
                            shared ? "this gateway replica is stopping: reconnect with "
                                     "Last-Event-ID to continue the stream"
                                   : "this gateway is stopping: the stream cannot be completed");
      break;
    }
    if (!woken) {
      co_await end_unserved(client, record, begun, http::status::gateway_timeout,
                            "upstream_unavailable", "journal_timeout",
                            "the journaled generation did not finish within timeouts.request_ms");
      break;
    }
  }
  entry->detach(reader, steady::now());
  if (v.ended && record.outcome == "ok") {
    take_journal_summary(record, v.summary);
  }
}

http::response<http::string_body> refusal(unsigned version, http::status status,
                                          std::string_view type, std::string_view code,
                                          const std::string& message) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = core::openai_error_body(type, message, code);
  return res;
}

// A stream this replica took over from another (gateway/journal_store_relay.hpp): its events go
// into an entry of this replica's journal under the stream's own key, a generation continues it
// (writing on to Redis under the new owner's token), and the client reads on from where it was.
awaitable<void> continue_taken_over(request& req, downstream& client, worker_state& worker,
                                    obs::request_record& record, request_kind kind,
                                    const std::string& stream_key, const std::string& digest,
                                    core::redis_journal_keys keys, store_takeover t) {
  auto& journal = *worker.shared->journal;
  auto& store = *worker.shared->shared_journal;
  const auto now = steady::now();
  auto opened = journal.open(stream_key, digest, std::nullopt, now);
  if (opened.entry->stream_key() != stream_key) {
    // This replica has another request's entry under the key: its events could not carry their
    // ids. Nobody continues it (the copy is marked so), and the client hears why.
    opened.entry->finish({}, summary_of(record), now);
    core::redis_journal_write mark;
    mark.first_seq = t.last + 1;
    mark.broken = true;
    mark.owner = t.owner;
    store.queue(keys, std::move(mark));
    co_await end_unserved(client, record, true, http::status::gateway_timeout,
                          "upstream_unavailable", "journal_stalled",
                          "the replica producing this stream stopped, and this one cannot "
                          "continue it (its stream key is taken here)");
    co_return;
  }
  const auto& entry = opened.entry;
  entry->commit_head(t.head, now);
  entry->append_events(t.events, now);
  const auto reader = entry->attach(t.sent, now);
  worker.probe.journal_replay("takeover");
  record.journal = "takeover";
  req.erase("last-event-id");  // the generation is the original request's
  stream_takeover seed{std::move(t.events), t.last, t.head.status};
  store_copy copy(store, std::move(keys), t.last + 1, t.owner);
  copy.hold();
  auto g = std::make_shared<journaled_generation>(
      std::move(req), record, entry, worker.gen->config->timeouts.stream_idle,
      journal.settings().stalled_reader, std::move(copy));
  g->takeover = std::move(seed);
  auto executor = co_await asio::this_coro::executor;
  spawn(executor, run_generation(g, worker, kind), "taken-over generation");
  co_await relay_entry(entry, reader, t.sent, client, worker, record, kind.heartbeat, true);
}

}  // namespace

bool wants_journal(const request& req, const core::config& cfg) {
  switch (cfg.journal.mode) {
    case core::journal_mode::off:
      return false;
    case core::journal_mode::all:
      return true;
    case core::journal_mode::keyed:
      return req.find("idempotency-key") != req.end() || req.find("x-request-id") != req.end() ||
             req.find("last-event-id") != req.end();
  }
  return false;
}

awaitable<void> serve_journaled(request& req, downstream& client, worker_state& worker,
                                obs::request_record& record, request_kind kind,
                                const answer_keeping* keeping) {
  auto& journal = *worker.shared->journal;
  const auto now = steady::now();
  const auto digest = request_digest(req);
  if (const auto last = header(req, "last-event-id")) {
    const auto id = core::parse_event_id(*last);
    auto entry = id ? journal.find(id->stream_key, digest, now) : nullptr;
    if (!entry && id && worker.shared->shared_journal) {
      // Not here: perhaps another replica's, in the shared journal.
      const auto keys = core::redis_journal_keys_for(id->stream_key, digest);
      store_takeover taken;
      if (co_await serve_from_store(*worker.shared->shared_journal, keys, id->seq, client, worker,
                                    record, kind.heartbeat, std::chrono::milliseconds(1000),
                                    &taken)) {
        if (!taken.owner.empty()) {
          co_await continue_taken_over(req, client, worker, record, kind, id->stream_key, digest,
                                       keys, std::move(taken));
        }
        co_return;
      }
    }
    if (!entry) {
      worker.probe.journal_refused("unknown_id");
      record.outcome = "rejected";
      record.status = 410;
      record.detail = "unknown Last-Event-ID";
      auto res =
          refusal(req.version(), http::status::gone, "stream_not_found", "last_event_id_unknown",
                  fmt::format("no journaled stream for Last-Event-ID \"{}\" and this "
                              "request: it ended more than the journal's ttl ago, the "
                              "request differs, or it was not journaled (send an "
                              "Idempotency-Key or X-Request-Id to journal a request)",
                              *last));
      co_await client.send(std::move(res));
      co_return;
    }
    worker.probe.journal_replay("last_event_id");
    record.journal = "last_event_id";
    const auto reader = entry->attach(id->seq, now);
    co_await relay_entry(entry, reader, id->seq, client, worker, record, kind.heartbeat);
    co_return;
  }
  std::optional<std::string> idempotency;
  const auto& cfg = *worker.gen->config;
  // The client's own key, where journaling by header is its right; else the cache's.
  const bool own_key_honoured =
      keeping == nullptr || (wants_journal(req, cfg) &&
                             (kind.may_journal || cfg.journal.mode == core::journal_mode::all));
  if (const auto key = header(req, "idempotency-key"); own_key_honoured && key && !key->empty()) {
    if (key->size() > 255) {
      record.outcome = "rejected";
      record.status = 400;
      auto res = refusal(req.version(), http::status::bad_request, "invalid_request_error",
                         "idempotency_key_too_long", "Idempotency-Key must be at most 255 bytes");
      co_await client.send(std::move(res));
      co_return;
    }
    idempotency = scoped_idempotency_key(req, *key);
  }
  const bool shared_by_cache = keeping != nullptr && keeping->share && !idempotency;
  if (shared_by_cache) {
    // The request's identity, with who asks and the headers that can change its answer.
    idempotency =
        "cache:" + sha256_hex({keeping->request.identity, keeping->request.headers, digest});
  }
  auto opened = journal.open(record.id, digest, idempotency, now, shared_by_cache);
  if (opened.kind == core::stream_journal::open_kind::conflict && shared_by_cache) {
    // The same cache key with other credentials for the same client key (a second secret of
    // it): a generation of its own.
    opened = journal.open(record.id, digest, std::nullopt, now);
  }
  if (opened.kind == core::stream_journal::open_kind::conflict) {
    worker.probe.journal_refused("idempotency_conflict");
    record.outcome = "rejected";
    record.status = 422;
    auto res = refusal(req.version(), http::status::unprocessable_entity, "invalid_request_error",
                       "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request within the "
                       "journal's ttl; use a new key for a new request");
    co_await client.send(std::move(res));
    co_return;
  }
  if (opened.kind == core::stream_journal::open_kind::existing) {
    if (keeping != nullptr) {
      // An identical request's generation (in flight, or under the client's own key) serves this
      // one too.
      record.cache = "shared";
      client.stamp("x-nines-cache", "hit");
    }
    if (!shared_by_cache) {
      worker.probe.journal_replay("idempotency");
    }
    record.journal = "idempotency";
    const auto reader = opened.entry->attach(0, now);
    co_await relay_entry(opened.entry, reader, 0, client, worker, record, kind.heartbeat);
    co_return;
  }
  record.journal = "new";
  // Attached before the generation starts, so that it never runs without its first client.
  const auto reader = opened.entry->attach(0, now);
  // With a shared journal, the client's own Idempotency-Key is claimed across replicas: a
  // duplicate sent to another replica follows the first one's generation.
  core::idempotency_claim claim;
  claim.type = core::idempotency_claim::kind::ours;
  if (worker.shared->shared_journal && idempotency && !shared_by_cache) {
    const auto ttl = cfg.journal.ttl + cfg.timeouts.request;
    std::string scoped = *idempotency;
    std::string stream_key = opened.entry->stream_key();
    std::string request = digest;
    claim = co_await claim_idempotency(*worker.shared->shared_journal, std::move(scoped),
                                       std::move(stream_key), std::move(request), ttl);
  }
  using claim_kind = core::idempotency_claim::kind;
  std::optional<store_copy> copy;
  if (worker.shared->shared_journal && claim.type == claim_kind::ours) {
    copy.emplace(*worker.shared->shared_journal,
                 core::redis_journal_keys_for(opened.entry->stream_key(), digest));
  }
  auto g = std::make_shared<journaled_generation>(
      std::move(req), record, opened.entry, worker.gen->config->timeouts.stream_idle,
      journal.settings().stalled_reader, std::move(copy));
  if (claim.type == claim_kind::conflict) {
    // Another replica holds the key for another request: the entry answers 422, to this client
    // and to any duplicate here.
    worker.probe.journal_refused("idempotency_conflict");
    g->record.outcome = "rejected";
    auto res = refusal(g->req.version(), http::status::unprocessable_entity,
                       "invalid_request_error", "idempotency_key_reused",
                       "this Idempotency-Key was used with a different request within the "
                       "journal's ttl; use a new key for a new request");
    co_await g->sink.send(std::move(res));
  } else if (claim.type == claim_kind::elsewhere) {
    worker.probe.journal_replay("idempotency");
    record.journal = "idempotency";
    auto keys = core::redis_journal_keys_for(claim.stream_key, digest);
    auto executor = co_await asio::this_coro::executor;
    spawn(executor, follow_elsewhere(g, worker, std::move(keys), kind), "idempotency follower");
  } else {
    if (keeping != nullptr) {
      g->recorder.emplace(g->sink, worker, *keeping, g->record);
    }
    if (worker.shared->shared_journal && idempotency && !shared_by_cache) {
      g->claimed = *idempotency;
      g->digest = digest;
    }
    auto executor = co_await asio::this_coro::executor;
    spawn(executor, run_generation(g, worker, kind), "journaled generation");
  }
  co_await relay_entry(opened.entry, reader, 0, client, worker, record, kind.heartbeat);
}

}  // namespace nines::gateway
