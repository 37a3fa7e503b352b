#pragma once
// The attempt loop: sends one client request to upstreams until one of them gives an answer the
// client can have, and relays that answer. See docs/architecture.md, "Life of a request".
//
// Before the first byte reaches the client every failure is retried elsewhere (within the
// attempt limit, the backoff and the deadline): the response is committed to the client only when
// a non-streamed body has fully arrived, or when a stream's first complete event has. After the
// commit, a stream that breaks ends with an explicit error event, never silently.

#include "gateway/worker.hpp"
#include "net/http_server.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

// Proxies `request` (a /v1/... route) and fills `record` for the access log.
net::awaitable<void> forward_request(net::request& request, net::downstream& client,
                                     worker_state& worker, obs::request_record& record);

}  // namespace nines::gateway
