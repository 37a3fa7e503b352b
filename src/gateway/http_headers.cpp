#include "gateway/http_headers.hpp"

#include "core/http/message_framing.hpp"
#include "core/http/message_head.hpp"

namespace nines::gateway {
namespace {

using net::http::field;

// The names this message's Connection header fields list: hop-by-hop for this message only.
core::connection_options connection_options_of(const net::http::fields& fields) {
  core::connection_options options;
  for (const auto& h : fields) {
    if (h.name() == field::connection) {
      options.add(h.value());
    }
  }
  return options;
}

bool stays_on_this_hop(const net::http::fields::value_type& h,
                       const core::connection_options& named) {
  const auto name = h.name_string();
  return core::is_hop_by_hop_name(name) || h.name() == field::content_length ||
         named.lists(name);
}

}  // namespace

namespace {

// Whether the client's request header `h` goes upstream (append_request_headers says which).
bool goes_upstream(const net::http::fields::value_type& h, const core::connection_options& named,
                   bool replace_authorization) {
  const auto f = h.name();
  const auto name = h.name_string();
  // x-nines-* headers are for the gateway (x-nines-hedge); the upstream gets its own
  // traceparent and X-Request-Id; Last-Event-ID semantics are the gateway's too, and a
  // Nines-Upload names an upload of this gateway's (it is the body).
  const bool ours = (name.size() >= 8 && core::iequals(name.substr(0, 8), "x-nines-")) ||
                    core::iequals(name, "traceparent") || core::iequals(name, "last-event-id") ||
                    core::iequals(name, "idempotency-key") || core::iequals(name, "nines-upload");
  // A name with '_' is read differently by different servers (CGI maps '-' to '_', so
  // "Content_Length" could pass for "Content-Length" behind us): not forwarded, as in nginx.
  const bool underscore = name.find('_') != std::string_view::npos;
  return !(ours || underscore || stays_on_this_hop(h, named) || f == field::host ||
           f == field::expect || f == field::accept_encoding ||
           (replace_authorization && f == field::authorization) ||
           core::iequals(name, "x-request-id"));
}

// Headers that go upstream but say nothing a model server answers differently for: who the
// client software is, trace and cache directives, an SDK's retry count and timeout.
bool never_changes_an_answer(std::string_view name) {
  return core::iequals(name, "user-agent") || core::iequals(name, "tracestate") ||
         core::iequals(name, "baggage") || core::iequals(name, "cache-control") ||
         core::iequals(name, "pragma") ||
         (name.size() > 12 && core::iequals(name.substr(0, 12), "x-stainless-"));
}

void append_field(std::string& out, const net::http::fields::value_type& h) {
  const auto name = h.name_string();
  const auto value = h.value();
  out.append(name.data(), name.size()).append(": ").append(value.data(), value.size());
  out.append("\r\n");
}

}  // namespace

void append_request_headers(const net::http::fields& from, std::string& head,
                            bool replace_authorization) {
  const auto named = connection_options_of(from);
  for (const auto& h : from) {
    if (goes_upstream(h, named, replace_authorization)) {
      append_field(head, h);
    }
  }
}

void append_answer_headers(const net::http::fields& from, std::string& out,
                           bool with_authorization) {
  const auto named = connection_options_of(from);
  for (const auto& h : from) {
    if (goes_upstream(h, named, !with_authorization) && !never_changes_an_answer(h.name_string())) {
      append_field(out, h);
    }
  }
}

void copy_response_headers(const net::http::fields& from, net::http::fields& to) {
  const auto named = connection_options_of(from);
  for (const auto& h : from) {
    // An upstream's x-nines-heartbeat-ms speaks of that hop's heartbeats (a nines uplink's),
    // not of this one's: this hop says its own.
    if (stays_on_this_hop(h, named) || core::iequals(h.name_string(), "x-nines-heartbeat-ms")) {
      continue;
    }
    to.insert(h.name(), h.name_string(), h.value());
  }
}

}  // namespace nines::gateway
