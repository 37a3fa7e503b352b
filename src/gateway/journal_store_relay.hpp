#pragma once
// A reconnect read from the shared journal (gateway/journal_store.hpp): a client that comes back
// with Last-Event-ID to a replica whose own journal does not hold its answer (another replica
// produced it) gets the rest from Redis, then follows the live stream there, byte for byte what
// the producing replica sends its own clients.
//
// The answer is found by its stream key and the request's digest (core/redis/redis_journal_layout
// .hpp): only the same request with the same credentials finds it. Each reader holds its own
// connection to the primary (XREAD BLOCK), within journal.store_max_readers. What cannot be
// completed ends with a defined answer: 503 while Redis cannot be reached (nothing is known
// then), 410 when the copy is incomplete, the stream's explicit error event when Redis goes away
// or the producer stops writing (timeouts.stream_idle) in the middle.

#include <chrono>
#include <cstdint>
#include <optional>

#include "core/redis/redis_journal_layout.hpp"
#include "gateway/journal_store.hpp"
#include "gateway/worker.hpp"
#include "net/http_server.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

// False when the shared journal does not hold the answer either (the caller answers 410); true
// when the client was answered (the rest of the answer, or a defined refusal). An answer whose
// copy has not begun in Redis yet is waited for `arrival` (a reconnect: 1 s, for what its
// producer still has queued; a duplicate of an Idempotency-Key: the first replica's first byte).
net::awaitable<bool> serve_from_store(journal_store& store, core::redis_journal_keys keys,
                                      std::uint64_t after, net::response_sink& client,
                                      worker_state& worker, obs::request_record& record,
                                      std::optional<std::chrono::milliseconds> heartbeat,
                                      std::chrono::milliseconds arrival);

// Idempotency-Key across replicas: claims `scoped_key` in Redis for this replica's answer
// `stream_key` to the request `digest` (core::idempotency_claim_command), within 250 ms. Redis away,
// slow or saying something else: the claim counts as this replica's (it generates, as without a
// shared journal).
net::awaitable<core::idempotency_claim> claim_idempotency(journal_store& store,
                                                          std::string scoped_key,
                                                          std::string stream_key,
                                                          std::string digest,
                                                          std::chrono::milliseconds ttl);

// Gives a claim of this replica up (its generation failed), within 250 ms; false when Redis did
// not confirm it (the claim then expires with its ttl).
net::awaitable<bool> release_idempotency(journal_store& store, std::string scoped_key,
                                         std::string stream_key, std::string digest);

}  // namespace nines::gateway
