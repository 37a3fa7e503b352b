#include "gateway/upload_endpoint.hpp"

#include <fmt/format.h>

#include <utility>

#include "core/codec/base64.hpp"
#include "core/codec/sha256_stream.hpp"
#include "core/http/openai_error.hpp"
#include "core/upload/tus_headers.hpp"
#include "gateway/upload_store.hpp"

namespace nines::gateway {
namespace {

using namespace net;
using core::upload_problem;
using steady = std::chrono::steady_clock;

constexpr std::string_view offset_stream = "application/offset+octet-stream";
constexpr std::size_t append_piece_bytes = 64u << 10;

std::optional<std::string_view> single(const request& req, std::string_view name, bool& repeated) {
  const auto [first, last] = req.equal_range(name);
  if (first == last) {
    return std::nullopt;
  }
  repeated = repeated || std::next(first) != last;
  return std::string_view(first->value());
}

struct refusal {
  unsigned status;
  std::string_view code;
  std::string message;
};

refusal refusal_of(upload_problem p) {
  switch (p) {
    case upload_problem::not_found:
      return {404, "upload_not_found", "no such upload"};
    case upload_problem::gone:
      return {410, "upload_gone", "the upload has ended (terminated, expired, or used)"};
    case upload_problem::offset_mismatch:
      return {409, "upload_offset_mismatch", "Upload-Offset is not the upload's stored offset"};
    case upload_problem::too_large:
      return {413, "upload_too_large", "the bytes go past the upload's length or limit"};
    case upload_problem::storage_full:
      return {503, "upload_storage_full", "the gateway's upload storage is full; retry later"};
    case upload_problem::in_use:
      return {409, "upload_in_use", "the upload is the body of another request right now"};
    case upload_problem::incomplete:
      return {409, "upload_incomplete", "the upload is not finished: send the rest of it first"};
    case upload_problem::fenced:
      return {409, "upload_taken_over", "a newer request on this upload took it over"};
    case upload_problem::digest_mismatch:
      return {460, "upload_digest_mismatch",
              "the upload's content does not match the sha256 its creation declared; the upload "
              "has ended"};
    case upload_problem::io_failed:
      return {507, "upload_storage_failed", "the gateway could not store the upload"};
    case upload_problem::none:
      break;
  }
  return {500, "internal_error", "unexpected"};
}

void set_tus_fields(http::fields& f) {
  f.set("Tus-Resumable", core::tus_version);
  f.set(http::field::cache_control, "no-store");
}

http::response<http::string_body> tus_answer(const request& req, unsigned status) {
  http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
  set_tus_fields(res.base());
  return res;
}

void set_expires(http::fields& f, steady::time_point expires) {
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(expires - steady::now());
  const auto wall = std::chrono::system_clock::now() + left;
  f.set("Upload-Expires",
        core::http_date(
            std::chrono::duration_cast<std::chrono::seconds>(wall.time_since_epoch()).count()));
}

awaitable<void> refuse(const request& req, downstream& client, obs::request_record& record,
                       const refusal& r) {
  record.outcome = "rejected";
  record.status = r.status;
  record.detail = std::string(r.code);
  auto res = tus_answer(req, r.status);
  res.set(http::field::content_type, "application/json");
  if (r.status == 412) {
    res.set("Tus-Version", core::tus_version);
  }
  if (r.status == 405) {
    res.set(http::field::allow,
            r.code == "collection_method" ? "OPTIONS, POST" : "OPTIONS, HEAD, PATCH, DELETE");
  }
  const std::string_view type = r.status == 401   ? "authentication_error"
                                : r.status == 413 ? "request_too_large"
                                : r.status >= 500 ? "server_error"
                                                  : "invalid_request_error";
  res.body() = core::openai_error_body(type, r.message, r.code);
  if (client.streamed_body() != nullptr && !client.streamed_body()->done()) {
    client.close_after();  // the rest of its body is not read: the connection ends here
  }
  co_await client.send(std::move(res));
}

// The owner of an upload request: its client key's id.
std::optional<refusal> identify_client(const request& req, worker_state& worker,
                                       std::string& owner) {
  const auto keys = worker.shared->keys.load();
  if (!keys) {
    return refusal{403, "uploads_need_keys", "uploads are for client keys only"};
  }
  if (req.count(http::field::authorization) > 1) {
    return refusal{401, "invalid_api_key", "the request has two Authorization headers"};
  }
  const auto it = req.find(http::field::authorization);
  const std::string_view authorization =
      it == req.end() ? std::string_view{} : std::string_view(it->value());
  const core::client_key* key = nullptr;
  if (auto refused = core::identify(*keys, authorization, std::chrono::system_clock::now(), key)) {
    worker.probe.auth_refused(refused->reason);
    return refusal{refused->status, "invalid_api_key", refused->message};
  }
  owner = key->id;
  return std::nullopt;
}

// The append's bytes as they arrive: stored (and committed) at once, or with Upload-Checksum
// staged and committed once the whole body matched. Returns the refusal to send, if any; a body
// cut off by its client gets none (nobody reads it).
struct append_end {
  std::optional<refusal> refused;
  bool cut = false;
};
awaitable<append_end> receive_append(downstream& client, upload_store::append& append,
                                     const std::optional<core::upload_checksum>& checksum,
                                     upload_store& store) {
  append_end out;
  auto* body = client.streamed_body();
  std::optional<core::sha256_stream> digest;
  if (checksum) {
    digest.emplace();
  }
  std::string buffer(append_piece_bytes, '\0');
  while (body != nullptr && !body->done()) {
    const auto p = co_await body->read_some(asio::buffer(buffer));
    if (p.ec) {
      if (const auto* why = body->refusal()) {
        out.refused = refusal{why->status, why->code, why->message};
      } else {
        out.cut = true;
      }
      break;
    }
    const std::string_view piece(buffer.data(), p.n);
    const auto written = digest ? append.stage(piece) : append.write(piece, steady::now());
    if (digest) {
      digest->update(piece);
    }
    store.count_received(piece.size(), written == upload_problem::none);
    if (written != upload_problem::none) {
      out.refused = refusal_of(written);
      co_return out;
    }
  }
  if (!digest || out.cut || out.refused) {
    co_return out;
  }
  const auto got = digest->current();
  if (checksum->digest.size() != got.size() ||
      !std::equal(got.begin(), got.end(), checksum->digest.begin(),
                  [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); })) {
    out.refused = refusal{460, "checksum_mismatch",
                          "the body does not match its Upload-Checksum: nothing of it was kept"};
    co_return out;
  }
  if (const auto p = append.commit_staged(steady::now()); p != upload_problem::none) {
    out.refused = refusal_of(p);
  }
  co_return out;
}

// Upload-Checksum, when given: only sha256 (400 for anything else).
std::optional<refusal> read_checksum(const request& req, std::optional<core::upload_checksum>& out,
                                     bool& repeated) {
  const auto text = single(req, "upload-checksum", repeated);
  if (!text) {
    return std::nullopt;
  }
  out = core::parse_upload_checksum(*text);
  if (!out) {
    return refusal{400, "bad_upload_checksum",
                   "Upload-Checksum must be \"sha256 <base64 digest>\""};
  }
  if (out->algorithm == "sha256" && out->digest.size() != 32) {
    return refusal{400, "bad_upload_checksum", "a sha256 Upload-Checksum is a 32-byte digest"};
  }
  if (out->algorithm != "sha256") {
    return refusal{400, "unsupported_checksum_algorithm",
                   fmt::format("Upload-Checksum algorithm \"{}\" is not supported; "
                               "Tus-Checksum-Algorithm says which are",
                               out->algorithm)};
  }
  return std::nullopt;
}

std::optional<refusal> check_append_type(const request& req, bool& repeated) {
  const auto type = single(req, "content-type", repeated);
  if (!type || !core::iequals(*type, offset_stream)) {
    return refusal{415, "unsupported_media_type",
                   "an append's Content-Type must be application/offset+octet-stream"};
  }
  return std::nullopt;
}

awaitable<void> answer_options(const request& req, downstream& client, obs::request_record& record,
                               const upload_store& store) {
  auto res = tus_answer(req, 204);
  res.set("Tus-Version", core::tus_version);
  res.set("Tus-Extension", core::tus_extensions);
  res.set("Tus-Max-Size", std::to_string(store.limits().max_upload_bytes));
  res.set("Tus-Checksum-Algorithm", "sha256");
  record.status = 204;
  co_await client.send(std::move(res));
}

awaitable<void> create_upload(request& req, downstream& client, obs::request_record& record,
                              upload_store& store, std::string owner) {
  bool repeated = false;
  const auto length_text = single(req, "upload-length", repeated);
  const auto metadata_text = single(req, "upload-metadata", repeated);
  std::optional<core::upload_checksum> checksum;
  auto checksum_refusal = read_checksum(req, checksum, repeated);
  if (repeated) {
    const refusal refused_with{400, "ambiguous_tus_header", "a tus header is given twice"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (req.find("upload-defer-length") != req.end()) {
    const refusal refused_with{400, "defer_length_not_supported",
                               "Upload-Defer-Length is not supported: send Upload-Length"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  const auto length = length_text ? core::parse_upload_number(*length_text) : std::nullopt;
  if (!length) {
    const refusal refused_with{400, "bad_upload_length",
                               "a creation needs Upload-Length: the upload's size in bytes"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (*length > store.limits().max_upload_bytes) {
    const refusal refused_with{413, "upload_too_large",
                               fmt::format("Upload-Length {} is over Tus-Max-Size {}", *length,
                                           store.limits().max_upload_bytes)};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  std::optional<std::string> expected;
  if (metadata_text && metadata_text->size() > 4096) {
    const refusal refused_with{400, "bad_upload_metadata",
                               "Upload-Metadata is longer than 4096 bytes"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (metadata_text) {
    std::vector<core::upload_metadata_entry> entries;
    if (auto why = core::parse_upload_metadata(*metadata_text, entries); !why.empty()) {
      const refusal refused_with{400, "bad_upload_metadata", why};
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
    for (auto& e : entries) {
      if (e.key == "sha256") {
        if (e.value.size() != 32) {
          const refusal refused_with{400, "bad_upload_metadata",
                                     "Upload-Metadata's sha256 must be a 32-byte digest"};
          co_await refuse(req, client, record, refused_with);
          co_return;
        }
        expected = std::move(e.value);
      }
    }
  }
  auto* body = client.streamed_body();
  const bool with_body = body != nullptr && !body->done();
  if (with_body) {
    if (auto why = check_append_type(req, repeated)) {
      const refusal refused_with = *why;
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
    if (checksum_refusal) {
      const refusal refused_with = *checksum_refusal;
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
    if (const auto declared = body->declared_length(); declared && *declared > *length) {
      const refusal refused_with{413, "upload_too_large", "the body is longer than Upload-Length"};
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
  }
  const auto now = steady::now();
  auto made = store.create(owner, *length, metadata_text ? std::string(*metadata_text) : "",
                           std::move(expected), now);
  if (made.problem != upload_problem::none) {
    const refusal refused_with = refusal_of(made.problem);
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  record.detail = made.id;
  const std::string location = fmt::format("{}/{}", core::uploads_path, made.id);
  std::uint64_t offset = 0;
  if (with_body) {
    upload_store::append append;
    if (const auto p = store.begin_append(made.id, owner, 0, now, append);
        p != upload_problem::none) {
      const refusal refused_with = refusal_of(p);
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
    const auto end = co_await receive_append(client, append, checksum, store);
    if (end.cut || end.refused) {
      // Its client never learnt its URL: nobody can resume it.
      store.remove(made.id, owner, steady::now());
    }
    if (end.cut) {
      record.outcome = "client_closed";
      co_return;
    }
    if (end.refused) {
      const refusal refused_with = *end.refused;
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
    offset = append.offset_after();
  }
  auto res = tus_answer(req, 201);
  res.set(http::field::location, location);
  if (with_body) {
    res.set("Upload-Offset", std::to_string(offset));
  }
  set_expires(res.base(), store.expiry_of(made.id).value_or(steady::now()));
  record.status = 201;
  co_await client.send(std::move(res));
}

awaitable<void> report_offset(request& req, downstream& client, obs::request_record& record,
                              upload_store& store, std::string_view id, std::string_view owner) {
  const auto state = store.take_over(id, owner, steady::now());
  if (state.problem != upload_problem::none) {
    const refusal refused_with = refusal_of(state.problem);
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  auto res = tus_answer(req, 200);
  res.set("Upload-Offset", std::to_string(state.offset));
  res.set("Upload-Length", std::to_string(state.length));
  if (!state.metadata.empty()) {
    res.set("Upload-Metadata", state.metadata);
  }
  set_expires(res.base(), state.expires);
  record.status = 200;
  co_await client.send(std::move(res));
}

awaitable<void> append_to_upload(request& req, downstream& client, obs::request_record& record,
                                 upload_store& store, std::string_view id, std::string_view owner) {
  bool repeated = false;
  const auto offset_text = single(req, "upload-offset", repeated);
  std::optional<core::upload_checksum> checksum;
  const auto checksum_refusal = read_checksum(req, checksum, repeated);
  const auto type_refusal = check_append_type(req, repeated);
  if (repeated) {
    const refusal refused_with{400, "ambiguous_tus_header", "a tus header is given twice"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (type_refusal) {
    const refusal refused_with = *type_refusal;
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  const auto offset = offset_text ? core::parse_upload_number(*offset_text) : std::nullopt;
  if (!offset) {
    const refusal refused_with{400, "bad_upload_offset",
                               "an append needs Upload-Offset: where its bytes start"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (checksum_refusal) {
    const refusal refused_with = *checksum_refusal;
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  const auto now = steady::now();
  upload_store::append append;
  if (const auto p = store.begin_append(id, owner, *offset, now, append);
      p != upload_problem::none) {
    const refusal refused_with = refusal_of(p);
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (auto* body = client.streamed_body(); body != nullptr) {
    if (const auto declared = body->declared_length();
        declared && *declared > append.length() - *offset) {
      const refusal refused_with{413, "upload_too_large",
                                 "the body goes past the upload's Upload-Length"};
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
  }
  if (*offset > 0) {
    store.count_resumed_append();
  }
  const auto end = co_await receive_append(client, append, checksum, store);
  if (end.cut) {
    record.outcome = "client_closed";
    co_return;
  }
  if (end.refused) {
    const refusal refused_with = *end.refused;
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  auto res = tus_answer(req, 204);
  res.set("Upload-Offset", std::to_string(append.offset_after()));
  set_expires(res.base(), store.expiry_of(id).value_or(steady::now()));
  record.status = 204;
  co_await client.send(std::move(res));
}

}  // namespace

bool is_upload_path(std::string_view path) {
  return path.starts_with(core::uploads_path) &&
         (path.size() == core::uploads_path.size() || path[core::uploads_path.size()] == '/');
}

bool streams_upload_body(const request& req) {
  const auto m = req.method();
  return (m == http::verb::patch || m == http::verb::post) && is_upload_path(req.target());
}

awaitable<void> serve_upload(request& req, downstream& client, worker_state& worker,
                             obs::request_record& record) {
  auto& store = *worker.shared->uploads;
  const std::string_view path = record.path;
  const bool collection = path.size() == core::uploads_path.size();
  const std::string_view id =
      collection ? std::string_view{} : path.substr(core::uploads_path.size() + 1);
  if (!collection && !core::is_upload_id(id)) {
    const refusal refused_with = refusal_of(upload_problem::not_found);
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (req.target().find('?') != std::string_view::npos) {
    const refusal refused_with{400, "unexpected_query", "tus requests take no query"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  if (req.method() == http::verb::options) {
    co_await answer_options(req, client, record, store);
    co_return;
  }
  // Anything else speaks tus 1.0.0, and says so; a method override would be a second opinion
  // about what the request is.
  const auto [first, last] = req.equal_range("tus-resumable");
  if (first == last || std::next(first) != last || first->value() != core::tus_version) {
    const refusal refused_with{412, "tus_version_not_supported",
                               "Tus-Resumable must be 1.0.0, the version this server speaks"};
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  // X-HTTP-Method-Override (tus 1.0: for clients behind proxies that pass only GET and POST):
  // honoured from a POST on an upload to PATCH or DELETE, once; anywhere else it is a second
  // opinion about what the request is, and refused.
  auto method = req.method();
  if (const auto [o, o_end] = req.equal_range("x-http-method-override"); o != o_end) {
    const bool single_override = std::next(o) == o_end;
    const auto wanted = http::string_to_verb(o->value());
    if (!single_override || collection || method != http::verb::post ||
        (wanted != http::verb::patch && wanted != http::verb::delete_)) {
      const refusal refused_with{400, "method_override_refused",
                                 "X-HTTP-Method-Override is taken once, on a POST to an upload, "
                                 "as PATCH or DELETE"};
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
    method = wanted;
  }
  std::string owner;
  if (auto why = identify_client(req, worker, owner)) {
    const refusal refused_with = *why;
    co_await refuse(req, client, record, refused_with);
    co_return;
  }
  record.key_id = owner;
  if (collection && method == http::verb::post) {
    co_await create_upload(req, client, record, store, std::move(owner));
    co_return;
  }
  if (!collection && method == http::verb::head) {
    co_await report_offset(req, client, record, store, id, owner);
    co_return;
  }
  if (!collection && method == http::verb::patch) {
    co_await append_to_upload(req, client, record, store, id, owner);
    co_return;
  }
  if (!collection && method == http::verb::delete_) {
    const auto p = store.remove(id, owner, steady::now());
    if (p != upload_problem::none) {
      const refusal refused_with = refusal_of(p);
      co_await refuse(req, client, record, refused_with);
      co_return;
    }
    record.status = 204;
    auto res = tus_answer(req, 204);
    if (client.streamed_body() != nullptr && !client.streamed_body()->done()) {
      client.close_after();  // a body came with it (a POST overridden to DELETE): not read
    }
    co_await client.send(std::move(res));
    co_return;
  }
  const refusal not_allowed =
      collection
          ? refusal{405, "collection_method", "/v1/uploads takes POST (a creation) and OPTIONS"}
          : refusal{405, "method_not_allowed", "an upload takes HEAD, PATCH, DELETE and OPTIONS"};
  co_await refuse(req, client, record, not_allowed);
}

upload_body::upload_body(upload_body&& other) noexcept
    : refusal(std::move(other.refusal)),
      store_(std::exchange(other.store_, nullptr)),
      id_(std::move(other.id_)),
      owner_(std::move(other.owner_)) {}

upload_body::~upload_body() {
  if (store_ != nullptr) {
    store_->release(id_);  // the request did not use it up: a retry may
  }
}

upload_body take_upload_body(request& req, worker_state& worker, bool model_route) {
  upload_body out;
  const auto [first, last] = req.equal_range("nines-upload");
  if (first == last) {
    return out;
  }
  const auto refuse_with = [&](unsigned status, std::string code, std::string message) {
    out.refusal = upload_refusal{status, std::move(code), std::move(message)};
  };
  if (std::next(first) != last) {
    refuse_with(400, "ambiguous_upload", "Nines-Upload is given twice");
    return out;
  }
  if (!model_route || req.method() != http::verb::post) {
    refuse_with(400, "upload_not_accepted",
                "Nines-Upload is taken by POST /v1/chat/completions, /v1/completions and "
                "/v1/embeddings");
    return out;
  }
  if (!req.body().empty()) {
    refuse_with(400, "ambiguous_upload", "a request with Nines-Upload has no body of its own");
    return out;
  }
  if (!worker.shared->uploads) {
    refuse_with(400, "uploads_off", "this server takes no uploads ([uploads] dir)");
    return out;
  }
  const auto id = core::upload_id_of(first->value());
  if (!id) {
    refuse_with(400, "bad_upload_reference",
                "Nines-Upload must be an upload's URL, /v1/uploads/<id>");
    return out;
  }
  std::string owner;
  if (auto why = identify_client(req, worker, owner)) {
    refuse_with(why->status, std::string(why->code), why->message);
    return out;
  }
  std::string body;
  auto& store = *worker.shared->uploads;
  if (const auto p = store.claim_complete(*id, owner, steady::now(), body);
      p != upload_problem::none) {
    const auto r = refusal_of(p);
    refuse_with(r.status, std::string(r.code), r.message);
    return out;
  }
  out.store_ = &store;
  out.id_ = std::string(*id);
  out.owner_ = std::move(owner);
  req.body() = std::move(body);
  req.content_length(req.body().size());
  req.erase("nines-upload");
  return out;
}

void upload_served(upload_body& used) {
  if (used.store_ != nullptr) {
    used.store_->remove(used.id_, used.owner_, steady::now());
    used.store_ = nullptr;
  }
}

}  // namespace nines::gateway
