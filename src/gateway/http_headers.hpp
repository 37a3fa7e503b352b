#pragma once
// Which headers cross the gateway. Hop-by-hop headers (RFC 9110 §7.6.1) stay on their own hop:
// the fixed set (core::is_hop_by_hop_name) and every field the message's own Connection header
// names, in both directions. Host and Authorization are set per upstream; Accept-Encoding is
// dropped so that event streams come back uncompressed and can be checked event by event.

#include "net/asio.hpp"

namespace nines::gateway {

// Copies the client's request headers that an upstream should see: not the hop-by-hop ones, not
// those the gateway answers itself (x-nines-*, Last-Event-ID, Idempotency-Key), not traceparent
// (the upstream gets the gateway's span), not Content-Length (set for each hop), not names with an
// underscore (servers disagree on what they mean).
void copy_request_headers(const net::http::fields& from, net::http::fields& to,
                          bool replace_authorization);

// Copies an upstream's response headers that the client should see (not framing, not hop-by-hop).
void copy_response_headers(const net::http::fields& from, net::http::fields& to);

}  // namespace nines::gateway
