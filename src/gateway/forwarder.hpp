#pragma once
// The attempt loop: sends one client request to upstreams until one of them gives an answer the
// client can have, and relays that answer. See docs/architecture.md, "Life of a request".
//
// Before the first byte reaches the client every failure is retried elsewhere (within the
// attempt limit, the backoff and the deadline): the response is committed to the client only when
// a non-streamed body has fully arrived, or when a stream's first complete event has. After the
// commit, a stream that breaks is continued on another upstream, or ends with an explicit error
// event, never silently.

#include <string>

#include "core/access/admission.hpp"
#include "core/http/api_routes.hpp"
#include "core/stream/stream_dialect.hpp"
#include "gateway/worker.hpp"
#include "net/http_server.hpp"
#include "net/response_sink.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

struct request_kind {
  core::api_route route = core::api_route::passthrough;
  bool openai_json = false;  // POST /v1/chat/completions, /v1/completions or /v1/embeddings
                             // (their bodies are validated JSON objects)
  bool chat = false;         // /v1/chat/completions
  core::stream_dialect dialect = core::stream_dialect::opaque;  // how its streams end
  // Who asks (core/access): with client keys, the client's Authorization never goes upstream,
  // and what its key allows decides the headers that cost upstream work.
  bool client_key = false;
  bool may_hedge = false;     // x-nines-hedge honoured even without hedge.allow_client_header
  bool may_journal = true;    // journaling by header (journal.mode keyed)
  // The request's place in its key's limits: settled as soon as the answer's usage is known,
  // before the client reads it (so that its next request sees the settled count).
  core::access_ticket* ticket = nullptr;
  // x-nines-heartbeat-ms: a streamed answer carries an SSE comment whenever nothing else was sent
  // for this long (a client that watches for silence, such as nines edge, knows the path lives).
  std::optional<std::chrono::milliseconds> heartbeat;
};

request_kind classify_request(core::api_route route);

// Proxies `request` (on an allowed route, core/http/api_routes.hpp) and fills `record` for the
// access log: validates the JSON routes' bodies, then answers straight to the client or, for
// journaled requests, through the journal (gateway/journal_relay.hpp).
net::awaitable<void> forward_request(net::request& request, net::downstream& client,
                                     worker_state& worker, obs::request_record& record,
                                     core::api_route route);

// A stream that another replica was producing when it stopped (its lease in the shared journal ran
// out, gateway/journal_store_relay.hpp): every event its clients were sent, as journaled. The
// attempt loop takes it over as a stream of its own that broke after `last` events, and continues
// it on an upstream (core/stream/stream_continuation.hpp).
struct stream_takeover {
  std::string events;  // events 1..last, as the clients received them
  std::uint64_t last = 0;
  unsigned status = 200;  // the stream's head
};

// The attempt loop itself, writing to `sink`. Every SSE event it sends carries the id
// "<stream_key>:<n>", n counting from 1 (from takeover->last + 1 with a takeover, whose head the
// sink has already).
net::awaitable<void> run_attempts(net::request& request, net::response_sink& sink,
                                  worker_state& worker, obs::request_record& record,
                                  std::string stream_key, request_kind kind,
                                  const stream_takeover* takeover = nullptr);

}  // namespace nines::gateway
