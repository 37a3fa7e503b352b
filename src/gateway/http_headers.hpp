#pragma once
// Which headers cross the gateway. Hop-by-hop headers (RFC 9110 §7.6.1) stay on their own hop:
// the fixed set (core::is_hop_by_hop_name) and every field the message's own Connection header
// names, in both directions. Host and Authorization are set per upstream; Accept-Encoding is
// dropped so that event streams come back uncompressed and can be checked event by event.

#include <string>

#include "net/asio.hpp"

namespace nines::gateway {

// Writes the client's request headers that an upstream should see straight into the upstream
// request's head ("Name: value\r\n" each; no intermediate message): not the hop-by-hop ones, not
// those the gateway answers itself (x-nines-*, Last-Event-ID, Idempotency-Key), not traceparent
// (the upstream gets the gateway's span), not X-Request-Id (the gateway sets its own, the client's
// when it gave a usable one), not Content-Length (set for each hop), not names with an underscore
// (servers disagree on what they mean), and Authorization only when `replace_authorization` is
// false.
void append_request_headers(const net::http::fields& from, std::string& head,
                            bool replace_authorization);

// The request headers that go upstream and can change an answer (an answer cache's key): those
// append_request_headers writes (Authorization only `with_authorization`), less User-Agent,
// tracestate, baggage, Cache-Control, Pragma and the SDKs' x-stainless-* (retry count, timeout:
// an SDK's retry must find the answer of its first try). In the client's order.
void append_answer_headers(const net::http::fields& from, std::string& out,
                           bool with_authorization);

// Copies an upstream's response headers that the client should see (not framing, not hop-by-hop).
void copy_response_headers(const net::http::fields& from, net::http::fields& to);

}  // namespace nines::gateway
