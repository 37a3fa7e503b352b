#pragma once
// One upstream response read strictly off a pooled connection (RFC 9112 §6.3, core/http): interim
// 1xx responses are consumed (an unasked-for 101 is an error), answers to HEAD and 204/304 have no
// body whatever they declare, a Transfer-Encoding other than `chunked` or one beside a
// Content-Length is refused, and the body is decoded as framed (a length, chunked — trailers
// dropped — or until the connection closes). Reading never goes past the framed end: a length
// body is read from the socket only up to its length.
//
// `reusable()` says whether the connection may carry another request: only when the response was
// read exactly to its end, both sides allow keep-alive, the body was not close-delimited, and no
// byte beyond it has arrived. Anything else closes the connection, so that bytes an upstream
// sends beyond its answer can never reach the next request.
//
// Deadlines are the caller's (upstream_connection::expires_after before reading).
// Threading: the connection's worker thread.

#include <optional>
#include <string>

#include "core/http/chunked_decoder.hpp"
#include "core/http/message_framing.hpp"
#include "core/http/message_head.hpp"
#include "net/upstream_pool.hpp"

namespace nines::net {

// Errors of the upstream's framing (beside the socket's own): `bad_message` when a head or body
// is off the grammar (problem() says how), `partial_message` when the connection ended before the
// framed end.
enum class upstream_wire_error { bad_message = 1, partial_message };
const boost::system::error_category& upstream_wire_category();
inline error_code make_error_code(upstream_wire_error e) {
  return {static_cast<int>(e), upstream_wire_category()};
}

}  // namespace nines::net

template <>
struct boost::system::is_error_code_enum<nines::net::upstream_wire_error> : std::true_type {};

namespace nines::net {

class upstream_response {
 public:
  upstream_response(upstream_connection& connection, bool to_head, std::size_t max_head_bytes,
                    std::size_t max_meta_bytes = 4096);

  // Reads the final response head (at most 8 interim responses before it). An end of stream before
  // any byte of it is asio::error::eof (the server closed an idle connection we reused).
  awaitable<error_code> read_head();

  // The head, as Beast's header (status, reason, fields), for the gateway's header rules.
  const http::response_header<>& head() const { return head_; }
  unsigned status() const { return head_.result_int(); }
  const core::response_framing& framing() const { return framing_; }

  // Reads up to `size` body bytes into `buf`; `got` says how many. done() turns true at the end.
  awaitable<error_code> read_some(char* buf, std::size_t size, std::size_t& got);
  bool done() const { return done_; }
  bool reusable() const;

  // What was wrong, for bad_message: "Transfer-Encoding \"gzip\" is not supported", ...
  const std::string& problem() const { return problem_; }

 private:
  awaitable<io_result> read_more();  // into the connection's buffer
  awaitable<io_result> read_into(char* buf, std::size_t size);
  error_code fail(std::string problem);

  upstream_connection& connection_;
  bool to_head_;
  std::size_t max_head_bytes_;
  core::response_head parsed_;
  http::response_header<> head_;
  core::response_framing framing_;
  std::optional<core::chunked_decoder> chunked_;
  std::uint64_t remaining_ = 0;  // of a length body
  bool done_ = false;
  bool clean_end_ = true;  // no framing doubt (a close-delimited body has none but is not reused)
  std::string problem_;
};

// A whole response of at most `max_body` bytes, for the gateway's own small exchanges (health
// probes, alert webhooks). `reusable` as upstream_response::reusable().
struct whole_response {
  error_code error;
  unsigned status = 0;
  http::response_header<> head;  // its fields (a tus answer's Location and Upload-Offset)
  std::string body;
  bool reusable = false;
  std::string problem;  // for upstream_wire_error::bad_message
};
awaitable<whole_response> read_whole_response(upstream_connection& connection, bool to_head,
                                              std::size_t max_body);

}  // namespace nines::net
