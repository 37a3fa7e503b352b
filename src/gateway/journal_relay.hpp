#pragma once
// Journaled requests (core/stream/stream_journal.hpp): their generation writes into a journal entry and
// their clients read from it, so that
//   - a client whose connection dropped re-sends the request with `Last-Event-ID: <id>` and
//     receives the events after that id, while the generation went on without it;
//   - a request repeating an `Idempotency-Key` (same key, same body, same credentials) within the
//     journal's ttl gets the first request's answer, finished or still running, instead of a second
//     generation; the same key with another body is refused with 422;
//   - a client that leaves does not cancel the generation (until the ttl passes with nobody
//     attached).
// A request is journaled when the config's journal mode says so (default: requests that carry an
// Idempotency-Key, an X-Request-Id or a Last-Event-ID). Others are answered straight (forwarder),
// and their client's disconnect cancels the upstream request at once.

#include "gateway/answer_cache_relay.hpp"
#include "gateway/forwarder.hpp"
#include "gateway/worker.hpp"
#include "net/http_server.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

bool wants_journal(const net::request& req, const core::config& config);

// Serves a journaled request: a reconnect, a repeat, or a new generation (run on this worker,
// detached from the client) whose answer the client reads from the journal. With `keeping`, the
// request's answer is one the cache keeps (gateway/answer_cache_relay.hpp): unless the client gave
// an Idempotency-Key it may use, its idempotency key is made from its identity (credentials,
// target, body), its client key's id and its answer-affecting headers, so that an identical
// request whose generation is running is joined; a new generation's answer is then stored.
net::awaitable<void> serve_journaled(net::request& req, net::downstream& client,
                                     worker_state& worker, obs::request_record& record,
                                     request_kind kind,
                                     const answer_keeping* keeping = nullptr);

}  // namespace nines::gateway
