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
// when the client was answered (the rest of the answer, or a defined refusal).
net::awaitable<bool> serve_from_store(journal_store& store, core::redis_journal_keys keys,
                                      std::uint64_t after, net::downstream& client,
                                      worker_state& worker, obs::request_record& record,
                                      std::optional<std::chrono::milliseconds> heartbeat);

}  // namespace nines::gateway
