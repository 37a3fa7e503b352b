#pragma once
// The attempt loop's state and steps (internal to src/gateway; the entry points are in
// forwarder.hpp). One request_forwarder serves one client request from start to end:
//
//   forwarder.cpp        the loop: pick an upstream, decide retries (policy, budget, tokens),
//                        hedge, resume a broken stream, or answer that nothing could be done;
//   upstream_attempt.cpp one attempt: connect, send, read the head, a retryable status or a
//                        whole answer;
//   stream_relay.cpp     a streamed answer, event by event, to the client.
//
// Each response goes through an explicit state machine (`phase`): awaiting_first_byte → relaying
// → finished or failed. Attempts that race (a hedge) each work on their own copy of what the
// client has been sent (`stream_state`) and must claim the client before they write to it; the
// first to claim wins and the others are cancelled.

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "core/routing/retry_policy.hpp"
#include "core/http/sse_parser.hpp"
#include "core/stream/responses_stream.hpp"
#include "core/stream/stream_continuation.hpp"
#include "core/routing/upstream_selector.hpp"
#include "edge/upload_sender.hpp"
#include "gateway/forwarder.hpp"
#include "net/upstream_response.hpp"
#include "net/wakeup.hpp"

namespace nines::gateway {

using steady = std::chrono::steady_clock;

enum class phase {
  awaiting_first_byte,  // this upstream has sent the client nothing: a failure tries another
  relaying,             // this upstream's events reach the client; a break means resume
  finished,             // complete response delivered
  failed,               // ended: the client went away or got an explicit error
};

// A retryable upstream answer kept to give the client when every attempt fails.
struct kept_response {
  unsigned status = 0;
  net::http::fields headers;
  std::string body;
};

struct attempt_result {
  phase end = phase::awaiting_first_byte;  // finished/failed: the client got its answer
  core::attempt_failure failure = core::attempt_failure::none;
  core::stream_break cause = core::stream_break::reset;  // how a relayed stream broke
  unsigned status = 0;                                   // the upstream's, when it answered
  std::string detail;
  std::optional<std::chrono::milliseconds> retry_after;
  std::optional<kept_response> response;
  bool overflow = false;  // no connection: the upstream's pool limits were reached
  bool lost_race = false;  // a hedge that another attempt beat
  // ... while still connecting, to a racing attempt that connected first: a slow path, counted
  // against its upstream as a failed connect.
  bool slow_connect = false;
  bool client_left = false;  // the client went away: the attempt was cancelled
};

// What the client has been sent of a stream, and what is held back for it.
struct stream_state {
  core::stream_progress progress;
  // Tool-call chunks held back until the call is complete (the choice's finish_reason), so that a
  // client never holds half a tool call: a break meanwhile discards them, and the continuation
  // generates the call again, whole.
  std::vector<std::string> held;
  std::size_t held_bytes = 0;
  std::uint64_t events_sent = 0;  // ids are "<stream key>:<n>"
  core::responses_progress responses;         // a Responses stream, as the client received it
};

struct request_cancellation;

// Attempts racing for the client (a hedge): the first to claim it wins; claiming closes the
// others' connections so that their servers stop generating.
struct attempt_race {
  request_cancellation* request = nullptr;  // its slots stop an attempt's connect or wait
  std::optional<unsigned> winner;
  std::array<net::upstream_connection*, 2> connections{};
  std::array<bool, 2> cancelled{};
  // The attempt's path is known to work: a connect just done, or, on a pooled connection, its
  // request acknowledged or answered.
  std::array<bool, 2> connected{};
  std::array<bool, 2> started{};   // the attempt exists
  // The second attempt was started by the connect race (not by a hedge): then the first path
  // that works gives the other up. A hedge waits for a first byte instead.
  bool connect_race = false;
  std::array<bool, 2> outpaced{};  // given up because the other's path worked first
  std::array<std::optional<std::chrono::steady_clock::time_point>, 2> sent_at{};  // pooled: when
                                                                               // its request went
  bool claim(unsigned id);
  // The attempt's path works: the other, whose path has not shown it works yet (a connect under
  // way, a pooled connection whose request nobody acknowledged), is given up. A connect race is
  // decided; the request goes on along one path.
  void connected_first(unsigned id);
  // Attempt k's path is known to work now (a pooled connection's peer may just have acknowledged
  // its request: looked at, and remembered).
  bool path_works(unsigned k, std::chrono::steady_clock::time_point now);
  // Ends attempt `k`: cancelled, its connect or wait for a connection stopped, its connection
  // closed (so that its server stops generating).
  void stop(unsigned k);
};

// What a client's departure must reach at once: the upstream connections of the request's
// attempts in flight (a hedge has two), the attempt loop's own wait (a retry's backoff, a hedge's
// delay), and an attempt queued for a pooled connection.
struct request_cancellation {
  bool client_gone = false;
  std::array<net::upstream_connection*, 2> connections{};  // by attempt id
  net::wakeup* waiting = nullptr;
  std::array<net::acquire_cancel, 2> acquiring{};  // by attempt id, for upstream_pool::acquire
  void cancel();
};

// One attempt's own view.
struct attempt_context {
  unsigned id = 0;
  attempt_race* race = nullptr;  // set when hedged
  request_cancellation* request = nullptr;
  stream_state st;               // starts as a copy of what the client has been sent
  bool delivered = false;        // it wrote to the client: its `st` becomes the request's
  steady::time_point started = steady::now();
  std::optional<steady::duration> time_to_first_byte;  // to its first delivery (hedge delays)
  std::uint64_t* retry_slot = nullptr;  // a retry holds a place in the budget until it commits
  // True when this attempt may write to the client (no race, or it won); notes when it started,
  // and gives its place in the retry budget back (it is no longer trying, it is answering).
  bool claim() {
    if (race != nullptr && !race->claim(id)) {
      return false;
    }
    if (!time_to_first_byte) {
      time_to_first_byte = steady::now() - started;
    }
    release_retry_slot();
    return true;
  }
  void release_retry_slot() {
    if (retry_slot != nullptr) {
      --*retry_slot;
      retry_slot = nullptr;
    }
  }
  bool client_gone() const { return request->client_gone; }
  // The attempt must stop: its client left, or (a hedge) the other attempt has the client.
  bool cancelled() const { return client_gone() || (race != nullptr && race->cancelled[id]); }
  void track(net::upstream_connection* c) {
    if (race != nullptr) {
      race->connections[id] = c;
    }
    request->connections[id] = c;
  }
};

class request_forwarder final : public net::departure_listener {
 public:
  request_forwarder(net::request& req, net::response_sink& client, worker_state& worker,
                    obs::request_record& record, std::string stream_key, request_kind kind,
                    const stream_takeover* takeover = nullptr);

  net::awaitable<void> run();
  // The client left (net::downstream tells): every attempt is cancelled and its upstream
  // connection closed now, so that no server goes on generating for nobody.
  void client_departed() override;

 private:
  // forwarder.cpp
  std::vector<core::upstream_candidate> candidates(const routing_snapshot& routing) const;
  std::optional<std::size_t> choose(std::vector<core::upstream_candidate>& candidates,
                                    std::uint64_t tried, bool retry,
                                    const routing_snapshot& routing, bool& trial);
  net::awaitable<attempt_result> run_attempt(std::size_t upstream, bool retry, bool trial,
                                             attempt_race* race, unsigned id);
  struct hedge_slots;
  // An attempt with a second one elsewhere, started when the first has sent nothing after
  // `hedge_delay`, or has no connection yet after `connect_race` (either may be unset).
  net::awaitable<attempt_result> hedged_attempt(
      std::size_t first, bool trial, std::optional<std::chrono::milliseconds> hedge_delay,
      std::optional<std::chrono::milliseconds> connect_race, std::uint64_t& tried,
      const routing_snapshot& routing);
  net::awaitable<void> hedge_child(std::size_t upstream, bool retry, bool trial,
                                   attempt_race* race, unsigned id,
                                   std::shared_ptr<hedge_slots> slots);
  void report_outcome(std::size_t upstream, const attempt_result& r);
  net::awaitable<void> answer_all_failed(const std::optional<kept_response>& kept,
                                         const attempt_result& last, const std::string& why);
  enum class stop_reason { none, overflow, budget };
  stop_reason stopped_by_ = stop_reason::none;
  net::awaitable<void> end_incomplete(const std::string& why);
  // `from`: the upstream whose stream broke (or "takeover").
  net::awaitable<bool> begin_resume(std::string_view from, core::stream_break cause,
                                    const std::string& why);
  std::optional<std::chrono::milliseconds> hedge_delay_for(std::size_t upstream) const;
  // A request that two servers may both receive without a second effect: the model routes (at
  // temperature 0 a copy is the same work) and reads. Only these are raced once sent.
  bool may_send_twice() const {
    const auto verb = req_.method();
    return kind_.openai_json || kind_.dialect != core::stream_dialect::opaque ||
           verb == net::http::verb::get || verb == net::http::verb::head;
  }
  std::optional<std::chrono::milliseconds> connect_race_delay() const;

  // upstream_attempt.cpp
  net::awaitable<attempt_result> attempt(std::size_t upstream, attempt_context& ctx);
  // The head of the request for `upstream`, carrying `secret` (its credential) when not null,
  // written by hand into `head` (its body is body_).
  void append_upstream_request_head(std::string& head, std::size_t upstream,
                                    const std::string* secret,
                                    std::string_view upload_location = {}) const;
  // Whether this attempt's body goes to `upstream` as a tus upload first (edge/upload_sender).
  bool wants_upload(std::size_t upstream) const;
  // upstream_upload.cpp: the body sent as an upload on `conn` before the request; then the
  // request is sent with its body, or naming the upload (`head` is then that request's head), or
  // the attempt fails, or (a pooled connection the uplink had closed) starts on a fresh one.
  struct upload_step {
    enum class then { send_body, send_named, fail, reconnect } next = then::send_body;
    core::attempt_failure failure = core::attempt_failure::none;
    std::string detail;
  };
  net::awaitable<upload_step> upload_body_first(net::upstream_connection& conn,
                                                std::size_t upstream, const std::string* secret,
                                                bool may_reconnect, std::string& head);
  // A TLS failure with its diagnosis in the log, at most every 10 s per upstream and worker.
  void log_tls_failure(std::size_t upstream, const std::string& why);
  // The end of an attempt that must stop (client gone, or a hedge that lost).
  void stop_cancelled(attempt_result& r, const attempt_context& ctx);

  // stream_relay.cpp
  net::awaitable<attempt_result> relay_stream(net::upstream_connection& conn,
                                              net::upstream_response& response,
                                              std::size_t upstream, bool& reusable,
                                              attempt_context& ctx);
  void append_event(std::string& out, core::sse_event& event, stream_state& st) const;
  void append_data_event(std::string& out, std::string data, stream_state& st) const;
  void release_held(std::string& out, stream_state& st) const;
  void append_events(std::string& out, std::vector<core::sse_event>& events,
                     stream_state& st) const;
  void note_response_usage(const boost::json::object& final_event);
  // A takeover's journaled events become what the client has been sent (committed_), as if this
  // forwarder had relayed them; false when they are the whole stream (its final event is there).
  bool seed_from_journal(const stream_takeover& t);

  // An attempt writes to the client for the first time: it serves the request (the time to first
  // byte is the request's first such moment).
  void note_delivery(std::size_t upstream, attempt_context& ctx);
  obs::histogram& inter_token();

  net::request& req_;
  net::response_sink& client_;
  worker_state& worker_;
  std::shared_ptr<generation> gen_;   // kept for the request's life: a reload takes nothing away
  std::shared_ptr<pool_set> pools_;
  const core::config& cfg_;
  obs::request_record& record_;
  request_cancellation cancellation_;
  steady::time_point start_;
  steady::time_point deadline_;
  std::string_view body_;  // what attempts send: the client's body, or a continuation
  // Every event to the client carries "id: <stream_key_>:<n>", n counting from 1, so that a client
  // can come back with Last-Event-ID (journaled requests).
  std::string stream_key_;
  request_kind kind_;
  const stream_takeover* takeover_ = nullptr;
  std::string continuation_body_;
  std::string responses_as_chat_;  // a Responses request in its chat form, once continued
  edge::body_upload upload_;        // the body's upload, when an uplink takes it that way
  bool client_committed_ = false;  // the client has our response header
  bool continuing_ = false;        // attempts continue a broken stream
  unsigned attempts_at_resume_ = 0;  // attempts made before the latest resume
  stream_state committed_;           // what the client has been sent
  steady::time_point last_client_write_{};  // for the gap a client sees at a resume
  obs::histogram* inter_token_ = nullptr;    // this route's, looked up at the first use
  bool gap_pending_ = false;                 // a resume waits for its first event to the client
  core::stream_break pending_cause_ = core::stream_break::reset;  // of that resume
  std::string pending_from_;                                      // the upstream it left
};

}  // namespace nines::gateway
