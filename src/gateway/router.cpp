#include "gateway/router.hpp"

#include <charconv>
#include <fmt/format.h>

#include "core/http/openai_error.hpp"
#include "core/obs/trace_context.hpp"
#include "gateway/forwarder.hpp"
#include "gateway/admin.hpp"
#include "gateway/upload_endpoint.hpp"

namespace nines::gateway {
namespace {

using namespace net;
using steady = std::chrono::steady_clock;

std::string request_id(const request& req, worker_state& worker) {
  if (auto it = req.find("x-request-id"); it != req.end() && !it->value().empty() &&
                                          it->value().size() <= 128) {
    return std::string(it->value());
  }
  // Unique per process run: worker index, a per-worker counter, and a random run prefix.
  static const std::uint64_t run = core::splitmix_rng(
      static_cast<std::uint64_t>(steady::now().time_since_epoch().count())).next();
  // fmt's "{:08x}{:02x}{:010x}" by hand (zero-padded, wider when the value needs it): this runs
  // for every request.
  std::string id;
  id.reserve(24);
  const auto put = [&](std::size_t width, std::uint64_t value) {
    char digits[16];
    const auto end = std::to_chars(digits, digits + sizeof digits, value, 16).ptr;
    const auto n = static_cast<std::size_t>(end - digits);
    id.append(n < width ? width - n : 0, '0').append(digits, n);
  };
  put(8, static_cast<std::uint32_t>(run));
  put(2, worker.index);
  put(10, ++worker.next_request_number);
  return id;
}

awaitable<void> send_json(downstream& client, obs::request_record& record, http::status status,
                          std::string& body) {
  http::response<http::string_body> res{status, client.version()};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  record.status = static_cast<unsigned>(status);
  co_await client.send(std::move(res));
}

}  // namespace

awaitable<void> handle_request(request& req, downstream& client, worker_state& worker) {
  const auto start = steady::now();
  worker.refresh();  // a reload since the last request: this one uses the new configuration
  obs::request_record record;
  record.id = request_id(req, worker);
  // W3C trace context: continue the client's trace, or start one; the upstream gets our span.
  {
    std::string_view incoming;
    if (auto it = req.find("traceparent"); it != req.end()) {
      incoming = it->value();
    }
    auto trace = core::continue_trace(incoming, worker.random);
    record.trace_id = std::move(trace.trace_id);
    record.span_id = std::move(trace.span_id);
    record.parent_id = std::move(trace.parent_id);
    record.trace_flags = trace.flags;
  }
  record.method = http::to_string(req.method());
  const std::string_view target = req.target();
  record.path = std::string(target.substr(0, target.find('?')));
  record.bytes_in = req.body().size();

  // Liveness and readiness answer here too (load balancers probe the API port); /metrics, /status
  // and /dashboard only on the admin listener (gateway/admin.hpp).
  unsigned health_status = 0;
  if (co_await answer_health(req, client, *worker.shared, record.path, health_status)) {
    record.status = health_status;
  } else if (worker.shared->uploads && is_upload_path(record.path)) {
    co_await serve_upload(req, client, worker, record);
    if (const auto* body = client.streamed_body()) {
      record.bytes_in = body->received();
    }
  } else if (const auto route = worker.gen->routes.match(req.method_string(), record.path);
             route.kind == core::route_match_kind::found) {
    co_await forward_request(req, client, worker, record, route.route);
  } else if (route.kind == core::route_match_kind::wrong_method) {
    record.outcome = "rejected";
    std::string body = core::openai_error_body(
        "invalid_request_error",
        fmt::format("{} does not take {}; it takes {}", record.path, record.method, route.allow),
        "method_not_allowed");
    http::response<http::string_body> res{http::status::method_not_allowed, client.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::allow, route.allow);
    res.body() = std::move(body);
    record.status = 405;
    co_await client.send(std::move(res));
  } else {
    // Nothing else reaches an upstream: model servers serve admin endpoints on the same port.
    record.outcome = "rejected";
    std::string body = core::openai_error_body(
        "not_found",
        fmt::format("no route for {} {}: the gateway forwards the OpenAI API routes and the "
                    "configured routes.passthrough patterns only",
                    record.method, record.path),
        "route_not_found");
    co_await send_json(client, record, http::status::not_found, body);
  }
  if (client.failed() && record.outcome == "ok") {
    record.outcome = "client_closed";
  }
  record.bytes_out = client.bytes_sent();
  record.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
  const auto route = obs::route_label(record.method, record.path);
  worker.probe.request_finished(route, record.status, record.outcome, record.served_by,
                                record.duration_ms / 1000.0);
  record_sla(worker.shared->sla[worker.index], route, record);
  if (record.ttfb_ms >= 0) {
    worker.probe.first_token(route, record.ttfb_ms / 1000.0);
  }
  if (!record.cache.empty()) {
    worker.probe.cache_answer(record.cache);
  }
  worker.access_log.append(record);
}

}  // namespace nines::gateway
