#include "gateway/admin.hpp"

#include <fmt/format.h>

#include "core/http/openai_error.hpp"
#include "gateway/status.hpp"
#include "obs/dashboard.hpp"

namespace nines::gateway {

using namespace net;

awaitable<void> send_body(downstream& client, http::status status, std::string_view type,
                          std::string body) {
  http::response<http::string_body> res{status, client.version()};
  res.set(http::field::content_type, type);
  res.set(http::field::cache_control, "no-store");
  res.body() = std::move(body);
  co_await client.send(std::move(res));
}

awaitable<bool> answer_health(const request& req, downstream& client, const shared_state& shared,
                              std::string_view path, unsigned& status) {
  const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  if (!get || (path != "/healthz" && path != "/readyz")) {
    co_return false;
  }
  // Bodies are named before a co_await takes them (GCC 12, docs/architecture.md).
  if (path == "/healthz") {
    status = 200;
    std::string body = R"({"status":"ok"})";
    co_await send_body(client, http::status::ok, "application/json", std::move(body));
    co_return true;
  }
  const auto gen = shared.current.load();
  const auto usable = usable_upstreams(*gen);
  status = usable > 0 ? 200 : 503;
  std::string body = fmt::format(R"({{"ready":{},"usable_upstreams":{},"upstreams":{}}})",
                                 usable > 0, usable, gen->live.size());
  co_await send_body(client, usable > 0 ? http::status::ok : http::status::service_unavailable,
                     "application/json", std::move(body));
  co_return true;
}

awaitable<bool> refused_without_admin_key(const request& req, downstream& client,
                                          const std::optional<core::secret_digest>& admin_key) {
  if (!admin_key) {
    co_return false;
  }
  const auto it = req.find(http::field::authorization);
  const auto secret = it == req.end() ? std::nullopt : core::bearer_secret(it->value());
  if (secret && core::same_digest(core::sha256_of(*secret), *admin_key)) {
    co_return false;
  }
  http::response<http::string_body> res{http::status::unauthorized, client.version()};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::www_authenticate, "Bearer realm=\"nines admin\"");
  res.body() = core::openai_error_body("invalid_request_error",
                                       "the admin listener needs the admin key",
                                       "invalid_admin_key");
  co_await client.send(std::move(res));
  co_return true;
}

awaitable<void> send_dashboard(downstream& client, std::string_view page) {
  http::response<http::string_body> res{http::status::ok, client.version()};
  res.set(http::field::content_type, "text/html; charset=utf-8");
  res.set(http::field::cache_control, "no-cache");
  // Everything the page needs is inline; it talks to this listener only.
  res.set("content-security-policy",
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
          "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'");
  res.set("x-content-type-options", "nosniff");
  res.body() = std::string(page);
  co_await client.send(std::move(res));
}

awaitable<void> handle_admin_request(request& req, downstream& client, const shared_state& shared,
                                     std::optional<core::secret_digest> admin_key) {
  if (co_await refused_without_admin_key(req, client, admin_key)) {
    co_return;
  }
  const std::string_view target = req.target();
  const std::string_view path = target.substr(0, target.find('?'));
  unsigned status = 0;
  if (co_await answer_health(req, client, shared, path, status)) {
    co_return;
  }
  const bool get = req.method() == http::verb::get || req.method() == http::verb::head;
  if (get && path == "/status") {
    std::string body = status_json(shared, target.find("series") != std::string_view::npos);
    co_await send_body(client, http::status::ok, "application/json", std::move(body));
  } else if (get && path == "/metrics") {
    std::string body = shared.metrics->exposition();
    if (shared.extra_metrics) {
      body += shared.extra_metrics();
    }
    co_await send_body(client, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                       std::move(body));
  } else if (get && path == "/dashboard") {
    co_await send_dashboard(client, obs::dashboard_page());
  } else {
    http::response<http::string_body> res{http::status::not_found, client.version()};
    res.set(http::field::content_type, "application/json");
    res.body() = core::openai_error_body(
        "not_found", fmt::format("no admin endpoint {}: /metrics, /status, /dashboard, /healthz, "
                                 "/readyz",
                                 path),
        "route_not_found");
    co_await client.send(std::move(res));
  }
}

}  // namespace nines::gateway
