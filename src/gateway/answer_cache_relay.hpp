#pragma once
// The answer cache on the request path ([cache] in docs/config.md; core/cache/answer_cache.hpp).
//
//   1. From the request's head, before its body arrives (watch_cacheable_body, the server's
//      watch_body): who asks, the answer-affecting headers, Cache-Control; with the declared
//      length, the lookup key (core/cache/answer_key.hpp) and the kept requests under it, whose
//      bodies the cache_watch compares with each piece of the body as it arrives. So a 4 MB body
//      has nothing left to hash or compare at its last byte.
//   2. A kept answer to the same request (its body equal as it arrived, the rest compared at the
//      lookup) is a hit: admitted against the client key's limits with the facts its request had
//      (model, max tokens), then sent again (replay_answer): a whole answer as JSON, a stream as a
//      valid stream of the same events (no ids: they named the stream it was recorded from), with
//      Age.
//   3. Otherwise, once the body is probed: an answer at temperature 0 is generated through the
//      journal under an idempotency key made from the request's SHA-256 identity, its client
//      key's id and its answer-affecting headers, so that identical requests in flight at the
//      same time (an SDK's retry) share one generation, and a client that leaves does not cancel
//      it; an answer_recorder sees what the generation sends and stores a complete 200 with its
//      request, before the answer's end reaches anyone.
// Every answer on these routes carries `x-nines-cache: hit|miss|bypass` while the cache is on.

#include <optional>

#include "core/cache/answer_cache.hpp"
#include "gateway/forwarder.hpp"
#include "gateway/worker.hpp"
#include "net/http_server.hpp"
#include "net/response_sink.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

struct cache_plan {
  std::optional<std::uint64_t> key;  // the lookup key: set when the request may be answered or kept
  bool look = false;                 // may be answered from the cache (no no-cache)
  std::optional<std::chrono::seconds> max_age;  // only what was kept at most this long ago
  bool only_if_cached = false;                  // a kept answer or a 504
  std::string identity;                         // who asks: the client key's id ("" without keys)
  std::string headers;                          // the answer-affecting headers
  // A kept request whose body this one's equals, byte for byte, as it arrived (null: none).
  const core::answer_request* body_match = nullptr;
  // What `identity` was read with, and the cache's epoch, when the head arrived: the request is
  // admitted with the same keys, and its answer kept only if no reload cleared the cache since.
  std::shared_ptr<const core::key_registry> keys;
  std::uint64_t epoch = 0;
  // The request as the cache sees it (views into `req` and this plan).
  core::answer_request_view view(const net::request& req) const {
    return {req.method_string(), req.target(), identity, headers, req.body()};
  }
};

// The cache's part of a request before its body arrives: its plan, from its head, and the kept
// requests with the same head and body length, whose bodies it compares with the body's pieces as
// they arrive, so that a hit has nothing left to compare at the last byte.
class cache_watch final : public net::body_watch {
 public:
  cache_watch(cache_plan plan, core::body_candidates candidates)
      : plan_(std::move(plan)), candidates_(std::move(candidates)) {}
  void take(std::string_view piece) override { candidates_.take(piece); }
  const cache_plan& plan() const { return plan_; }
  // The candidate equal to every byte that arrived, and as long (null: none).
  const core::answer_request* body_match() const { return candidates_.match(); }

 private:
  cache_plan plan_;
  core::body_candidates candidates_;
};

// For net::server_limits::watch_body: a cache_watch for a POST to a route whose answers the
// cache keeps, read from its head: Cache-Control, who asks (a client key's id), the
// answer-affecting headers. None (the cache is bypassed) for no-store, for credentials that are
// not usable (refused later), and for a reconnect (Last-Event-ID: the journal's).
std::unique_ptr<net::body_watch> watch_cacheable_body(const shared_state& shared,
                                                      const net::request& head,
                                                      std::optional<std::uint64_t> declared_length);

// The cache's view of a request once its body is in (the caller has stamped
// `x-nines-cache: bypass` on the answer and in the record; a later stage may say otherwise, and
// the gateway counts what the record says at the end). No key when the cache is off, the route
// keeps no answers, the body came from an upload, or its head ruled the cache out.
cache_plan plan_cache(const net::request& req, const net::downstream& client, worker_state& worker,
                      const request_kind& kind, bool body_from_upload);

// The kept answer to the request, if any, young enough for its max-age (before its admission).
std::optional<core::answer_cache::hit> look_up_answer(worker_state& worker, const cache_plan& plan,
                                                      const net::request& req);

// The facts of the request a kept answer was the answer to, for its admission.
core::json_facts facts_of(const core::cached_answer& answer);

// Sends a kept answer to the client.
net::awaitable<void> replay_answer(net::downstream& client, obs::request_record& record,
                                   const core::answer_cache::hit& hit);

// What a kept answer's generation needs to store it.
struct answer_keeping {
  std::uint64_t key = 0;
  core::answer_request request;  // a copy: the generation's request may change as it is resent
  core::json_facts facts;        // its request's
  // Joins an identical request's generation in flight (false for no-cache: a fresh answer).
  bool share = true;
  // The cache's epoch when the request arrived: kept only if no reload cleared the cache since.
  std::uint64_t epoch = 0;
};

// Records what a generation sends (the head, the whole body or the events), up to the cache's
// max_entry_bytes, and passes everything on to `inner`. At the answer's end, before the end is
// passed on (so that a client that asks again as soon as it has the answer finds it), the answer
// is stored with `keeping`'s request when the request went well (record.outcome ok) and the
// answer is one to send again: a 200 stream that ended, or a 200 JSON object that is not an
// error, which its server did not mark `Cache-Control: no-store`.
class answer_recorder final : public net::response_sink {
 public:
  answer_recorder(net::response_sink& inner, worker_state& worker, answer_keeping keeping,
                  const obs::request_record& record)
      : inner_(inner), worker_(worker), keeping_(std::move(keeping)), record_(record) {}

  net::awaitable<net::error_code> send(net::http::response<net::http::string_body> res) override;
  net::awaitable<net::error_code> begin_stream(
      net::http::response<net::http::empty_body> header) override;
  net::awaitable<net::error_code> write_chunk(std::string_view data) override;
  net::awaitable<net::error_code> end_stream() override;
  net::awaitable<net::error_code> finish_stream(std::string_view data) override;
  void break_stream() override;
  void beat_while_idle(const net::asio::any_io_executor& executor, std::chrono::milliseconds every,
                       std::string_view beat) override {
    inner_.beat_while_idle(executor, every, beat);
  }
  bool can_beat() const override { return inner_.can_beat(); }
  bool failed() const override { return inner_.failed(); }
  bool finished() const override { return inner_.finished(); }
  unsigned version() const override { return inner_.version(); }
  void on_departure(net::departure_listener* listener) override { inner_.on_departure(listener); }
  bool departed() const override { return inner_.departed(); }

 private:
  void record_head(const net::http::response_header<>& head, bool stream);
  void record_body(std::string_view data);
  void keep();  // at the end: stores the answer if it is one to keep

  net::response_sink& inner_;
  worker_state& worker_;
  answer_keeping keeping_;
  const obs::request_record& record_;
  core::cached_answer answer_;
  bool headed_ = false;
  bool too_large_ = false;
  bool kept_ = false;  // keep() ran
};

}  // namespace nines::gateway
