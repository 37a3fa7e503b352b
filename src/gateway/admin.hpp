#pragma once
// The admin listener (`[admin] listen`, default 127.0.0.1:9901): /metrics (Prometheus),
// /status (JSON), /dashboard (the SLA page), /healthz and /readyz — never on the API listener,
// where they would tell anyone who can reach the API about the upstreams. With `admin.key_hash`
// set (required beyond loopback), every request must carry `Authorization: Bearer <admin secret>`.
//
// Threading: served on its own thread's io_context; it reads only shared state (atomics,
// snapshots, the metrics registry).

#include <optional>

#include "core/access/secret_digest.hpp"
#include "gateway/worker.hpp"
#include "net/http_server.hpp"

namespace nines::gateway {

// An admin answer: `body` of content type `type`, never stored by a cache. Callers pass a named
// body (moved), not a temporary (GCC 12 and temporaries inside co_await).
net::awaitable<void> send_body(net::downstream& client, net::http::status status,
                               std::string_view type, std::string body);

// The dashboard page (obs/dashboard.hpp), with the headers that keep it to this listener.
net::awaitable<void> send_dashboard(net::downstream& client, std::string_view page);

// With `admin_key` set, a request without `Authorization: Bearer <admin secret>` is answered
// 401 (OpenAI-shaped, code invalid_admin_key): true when it was. Shared by every admin listener.
net::awaitable<bool> refused_without_admin_key(const net::request& request,
                                               net::downstream& client,
                                               const std::optional<core::secret_digest>& admin_key);

net::awaitable<void> handle_admin_request(net::request& request, net::downstream& client,
                                          const shared_state& shared,
                                          std::optional<core::secret_digest> admin_key);

// GET /healthz and /readyz, shared by both listeners: true when `path` was one of them (answered).
net::awaitable<bool> answer_health(const net::request& request, net::downstream& client,
                                   const shared_state& shared, std::string_view path,
                                   unsigned& status);

}  // namespace nines::gateway
