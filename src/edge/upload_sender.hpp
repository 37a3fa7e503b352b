#pragma once
// The edge's side of tus (docs/uploads.md): a request body larger than an uplink's
// upload_threshold_bytes goes to the gateway as an upload before the request, and the request
// then names it (Nines-Upload) with no body of its own. After a cut, the next attempt, through
// any uplink, asks the gateway for the offset it stored (HEAD, which also takes the upload over
// from the dead append) and sends only the rest. An uplink that is not the gateway holding the
// upload answers 404, and the upload starts again there.
//
// The body's SHA-256 goes with the creation (Upload-Metadata "sha256"): the gateway refuses a
// finished upload whose content differs (460), whatever path each part took.
//
// Runs on one connection of an attempt, exchange after exchange (keep-alive); the request's
// upload state is the forwarder's, one per request.

#include <cstdint>
#include <string>
#include <string_view>

#include "net/upstream_pool.hpp"

namespace nines::edge {

// One request body's upload, as far as the edge knows.
struct body_upload {
  std::string id;               // the upload's at the gateway that holds it; empty: none yet
  std::size_t heard_from = 0;   // the uplink whose answer `stored` is
  std::uint64_t stored = 0;     // its offset there, as last heard
  std::uint64_t sent_mark = 0;  // the furthest byte ever written toward it
  std::string sha256;           // base64 of the body's digest, computed once
  bool busy = false;            // an attempt is sending it (a hedge or a race sends inline)
  // What the request names: the gateway's own path, whatever prefix the uplink's URL has.
  std::string reference() const;
};

struct upload_exchange {
  std::size_t uplink = 0;               // which one this connection goes to
  std::string_view base_path;           // the uplink's ("/v1")
  std::string_view host;                // Host header value
  const std::string* secret = nullptr;  // the uplink's credential, if any
  std::string_view request_id;
  std::chrono::milliseconds timeout{};  // for each exchange
  // A body's bytes must be acknowledged by the far end: with some unacknowledged and no
  // acknowledgement for this long, the link is taken for dead (a WiFi that went silent), long
  // before `timeout`. And at most `window` bytes are in flight, so that a cut loses little.
  std::chrono::milliseconds stall{1000};
  std::size_t window = 512u << 10;
};

enum class upload_result {
  ready,        // the body is stored whole: the request may name it
  inline_body,  // the uplink takes no uploads (or cannot now): send the body itself
  failed,       // the connection broke or timed out: the attempt fails (and is retried)
};

struct upload_outcome {
  upload_result result = upload_result::failed;
  net::error_code error;  // for failed
  std::string detail;
  bool remember_refusal = false;  // inline_body because the uplink has no uploads at all
  bool resumed = false;           // an upload begun earlier was continued
  std::uint64_t bytes_sent = 0;   // body bytes written by this call
  // Of those, bytes written toward the upload before, by an append whose connection broke
  // before the gateway stored them (in flight at the cut: socket buffers, the path); the resume
  // starts at the gateway's stored offset, so nothing it stored is sent again.
  std::uint64_t bytes_resent = 0;
};

net::awaitable<upload_outcome> send_as_upload(net::upstream_connection& conn,
                                              const upload_exchange& how, body_upload& state,
                                              std::string_view body);

}  // namespace nines::edge
