#pragma once
// tus 1.0 at /v1/uploads (docs/uploads.md): core, creation, creation-with-upload, expiration,
// termination and checksum (sha256), for client keys only, in the gateway's upload store. A
// finished upload is the body of one request that names it with `Nines-Upload: <its URL>`.
//
//   OPTIONS /v1/uploads[/<id>]   204: Tus-Version, Tus-Extension, Tus-Max-Size (no key needed)
//   POST    /v1/uploads          201 Location: /v1/uploads/<id> (with a body: Upload-Offset too)
//   HEAD    /v1/uploads/<id>     200 Upload-Offset, Upload-Length; takes over from an older append
//   PATCH   /v1/uploads/<id>     204 Upload-Offset; bytes are kept as they arrive
//   DELETE  /v1/uploads/<id>     204
//
// Refusals, each with an OpenAI-shaped JSON body and Tus-Resumable: 400 a malformed tus header,
// 401 no or a bad key, 404 no such upload (or another key's), 405 another method, 409 an append
// not at the stored offset, 410 ended (terminated, expired, used, or refused for its digest), 412
// a Tus-Resumable other than 1.0.0, 413 past the upload's length or the per-upload limit, 415 an
// append that is not application/offset+octet-stream, 460 a checksum mismatch, 503 the store is
// full, 507 the store could not write.

#include <optional>
#include <string>

#include "gateway/upload_store.hpp"
#include "gateway/worker.hpp"
#include "net/http_server.hpp"
#include "obs/access_log.hpp"

namespace nines::gateway {

// "/v1/uploads" and what is below it.
bool is_upload_path(std::string_view path);
// For server_limits::streams_body: the appends (PATCH, POST with a body) under /v1/uploads.
bool streams_upload_body(const net::request& request);

net::awaitable<void> serve_upload(net::request& request, net::downstream& client,
                                  worker_state& worker, obs::request_record& record);

// A request that names a finished upload (Nines-Upload) gets its content as body, the upload held
// for it alone until the request ends: used up when its answer is complete (upload_served), else
// given back for a retry. A refusal is returned to send.
struct upload_refusal {
  unsigned status = 400;
  std::string code;
  std::string message;
};
class upload_body {
 public:
  upload_body() = default;
  upload_body(upload_body&& other) noexcept;
  upload_body& operator=(upload_body&&) = delete;
  ~upload_body();  // gives the upload back, unless it was used up

  std::optional<upload_refusal> refusal;
  // The request's body is a finished upload's.
  bool held() const { return store_ != nullptr; }

 private:
  friend upload_body take_upload_body(net::request&, worker_state&, bool);
  friend void upload_served(upload_body&);
  upload_store* store_ = nullptr;  // set while the upload is held
  std::string id_;
  std::string owner_;
};
upload_body take_upload_body(net::request& request, worker_state& worker, bool model_route);
// The request it was the body of got its whole answer: the upload ends.
void upload_served(upload_body& used);

}  // namespace nines::gateway
