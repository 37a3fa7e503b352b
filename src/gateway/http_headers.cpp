#include "gateway/http_headers.hpp"

namespace nines::gateway {

using net::http::field;

bool is_hop_by_hop(field f, std::string_view name) {
  switch (f) {
    case field::connection:
    case field::keep_alive:
    case field::proxy_authenticate:
    case field::proxy_authorization:
    case field::proxy_connection:
    case field::te:
    case field::trailer:
    case field::transfer_encoding:
    case field::upgrade:
    case field::content_length:  // recomputed for each hop
      return true;
    default:
      return net::beast::iequals(name, "keep-alive");
  }
}

void copy_request_headers(const net::http::fields& from, net::http::fields& to,
                          bool replace_authorization) {
  for (const auto& h : from) {
    const auto f = h.name();
    const auto name = h.name_string();
    // x-nines-* headers are for the gateway (x-nines-hedge); the upstream gets its own
    // traceparent, X-Request-Id and Last-Event-ID semantics are the gateway's too.
    const bool ours = (name.size() >= 8 && net::beast::iequals(name.substr(0, 8), "x-nines-")) ||
                      net::beast::iequals(name, "traceparent") ||
                      net::beast::iequals(name, "last-event-id") ||
                      net::beast::iequals(name, "idempotency-key");
    if (ours || is_hop_by_hop(f, name) || f == field::host || f == field::expect ||
        f == field::accept_encoding || (replace_authorization && f == field::authorization)) {
      continue;
    }
    to.insert(f, h.name_string(), h.value());
  }
}

void copy_response_headers(const net::http::fields& from, net::http::fields& to) {
  for (const auto& h : from) {
    if (is_hop_by_hop(h.name(), h.name_string())) {
      continue;
    }
    to.insert(h.name(), h.name_string(), h.value());
  }
}

}  // namespace nines::gateway
