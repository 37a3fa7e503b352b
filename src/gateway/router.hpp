#pragma once
// The gateway's request handler: answers its own endpoints (/healthz, /readyz), rejects unknown
// routes with a JSON 404, sends /v1/... to the forwarder, and writes the access log line.

#include "gateway/worker.hpp"
#include "net/http_server.hpp"

namespace nines::gateway {

net::awaitable<void> handle_request(net::request& request, net::downstream& client,
                                    worker_state& worker);

}  // namespace nines::gateway
