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

// A stream this replica took over (its owner's lease ran out while the client followed it).
struct store_takeover {
  std::string owner;  // the token this replica writes it under from now on
  core::journal_head head;
  std::string events;  // events 1..last, as the copy holds them
  std::uint64_t last = 0;
  std::uint64_t sent = 0;  // what the client has been sent of them (it has the head too)
};

// False when the shared journal does not hold the answer either (the caller answers 410); true
// when the client was answered (the rest of the answer, or a defined refusal), or, with
// `takeover`, when its stream was taken over (takeover->owner is set: the caller continues it). An
// answer whose copy has not begun in Redis yet is waited for `arrival` (a reconnect: 1 s, for what
// its producer still has queued; a duplicate of an Idempotency-Key: the first replica's first
// byte).
//
// Takeover: while the stream is followed and nothing comes, the reader asks Redis (each time a
// read blocked for nothing) whether its owner's lease ran out; once it did, this replica becomes
// the owner (a new epoch fences the old one off) and reads back every event. A lease that runs
// means its producer lives: the reader waits on (within timeouts.request) rather than calling the
// silence a stall.
net::awaitable<bool> serve_from_store(journal_store& store, core::redis_journal_keys keys,
                                      std::uint64_t after, net::response_sink& client,
                                      worker_state& worker, obs::request_record& record,
                                      std::optional<std::chrono::milliseconds> heartbeat,
                                      std::chrono::milliseconds arrival,
                                      store_takeover* takeover = nullptr);

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
