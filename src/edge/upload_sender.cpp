#include "edge/upload_sender.hpp"

#include <algorithm>
#include <array>
#include <fmt/format.h>

#include "core/access/secret_digest.hpp"
#include "core/codec/base64.hpp"
#include "core/upload/tus_headers.hpp"
#include "net/http_wire.hpp"
#include "net/upstream_response.hpp"

namespace nines::edge {
namespace {

using namespace net;

struct exchanged {
  whole_response response;
  std::size_t body_written = 0;  // of the body given, bytes the connection took
};

std::string request_head(std::string_view method, std::string_view target,
                         const upload_exchange& how, std::string_view fields,
                         std::optional<std::uint64_t> content_length) {
  std::string head;
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ");
  head.append(how.host).append("\r\n");
  if (how.secret != nullptr) {
    head.append("Authorization: Bearer ").append(*how.secret).append("\r\n");
  }
  head.append("Tus-Resumable: ").append(core::tus_version).append("\r\n");
  if (!how.request_id.empty()) {
    head.append("x-request-id: ").append(how.request_id).append("\r\n");
  }
  head.append(fields);
  if (content_length) {
    head.append("Content-Length: ");
    append_decimal(head, *content_length);
    head.append("\r\n");
  }
  head.append("\r\n");
  return head;
}

// Waits until at most `most` bytes written on `conn` are unacknowledged: `stalled` when some are
// and the far end acknowledged nothing for `stall` since the wait began (an idle connection's old
// silence does not count), or when `until` passes (acknowledgements that never drain the queue: a
// far end that stopped reading); `closed` when it closed or reset the connection meanwhile.
enum class drain { done, stalled, closed };
awaitable<drain> drained_to(upstream_connection& conn, std::size_t most,
                            std::chrono::milliseconds stall,
                            std::chrono::steady_clock::time_point until) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto q = conn.send_state();
    if (!q.known || q.unacknowledged <= most) {
      co_return drain::done;
    }
    if (!q.established) {
      co_return drain::closed;
    }
    const auto now = std::chrono::steady_clock::now();
    if ((q.since_last_ack >= stall && now - start >= stall) || now >= until) {
      co_return drain::stalled;
    }
    // A quarter of a round trip between looks (1 to 50 ms): about four looks per window's worth.
    co_await sleep_for(std::clamp<std::chrono::steady_clock::duration>(
        q.rtt / 4, std::chrono::milliseconds(1), std::chrono::milliseconds(50)));
  }
}

awaitable<exchanged> exchange(upstream_connection& conn, const std::string& head,
                              std::string_view body, bool to_head, const upload_exchange& how) {
  exchanged out;
  const auto stalled = [&](drain why) {
    if (why == drain::closed) {
      out.response.error = make_error_code(asio::error::connection_reset);
      out.response.problem = "the uplink closed the connection during the body";
      return;
    }
    out.response.error = make_error_code(beast::error::timeout);
    out.response.problem =
        fmt::format("nothing acknowledged for {} ms: the link is silent", how.stall.count());
  };
  conn.expires_after(how.timeout);
  const std::array<asio::const_buffer, 1> head_buffer{asio::buffer(head)};
  auto [hec, hn] = co_await conn.write(head_buffer);
  if (hec) {
    out.response.error = hec;
    co_return out;
  }
  const auto until = std::chrono::steady_clock::now() + how.timeout;
  // The far end closed during the body: it may have answered first (a refusal of an append it
  // would not read, then a lingering close). That answer is read, if it is there.
  const auto answer_after_close = [&]() -> awaitable<bool> {
    conn.expires_after(std::chrono::milliseconds(1000));
    auto r = co_await read_whole_response(conn, to_head, 64u << 10);
    if (r.error || r.status == 0) {
      co_return false;
    }
    out.response = std::move(r);
    out.response.reusable = false;
    co_return true;
  };
  // The body in pieces, each written when what is in flight is under the window, each within
  // the stall time (a full send buffer that does not drain is a silent link too).
  static constexpr std::size_t piece_bytes = 64u << 10;
  while (out.body_written < body.size()) {
    if (const auto d = co_await drained_to(conn, how.window, how.stall, until); d != drain::done) {
      if (d != drain::closed || !co_await answer_after_close()) {
        stalled(d);
      }
      co_return out;
    }
    const auto piece = body.substr(out.body_written, piece_bytes);
    conn.expires_after(how.stall);
    const std::array<asio::const_buffer, 1> buffer{asio::buffer(piece.data(), piece.size())};
    auto [ec, n] = co_await conn.write(buffer);
    out.body_written += n;
    if (ec) {
      if (ec == beast::error::timeout) {
        stalled(drain::stalled);
      } else if (!co_await answer_after_close()) {
        out.response.error = ec;
      }
      co_return out;
    }
  }
  if (!body.empty()) {
    if (const auto d = co_await drained_to(conn, 0, how.stall, until); d != drain::done) {
      if (d != drain::closed || !co_await answer_after_close()) {
        stalled(d);  // the last bytes never reached the far end
      }
      co_return out;
    }
  }
  conn.expires_after(how.timeout);
  out.response = co_await read_whole_response(conn, to_head, 64u << 10);
  co_return out;
}

std::optional<std::uint64_t> number_field(const whole_response& r, std::string_view name) {
  const auto [first, last] = r.head.equal_range(name);
  if (first == last || std::next(first) != last) {
    return std::nullopt;
  }
  return core::parse_upload_number(first->value());
}

upload_outcome failed(upload_outcome out, const whole_response& r, std::string what) {
  out.result = upload_result::failed;
  out.error = r.error ? r.error : make_error_code(asio::error::connection_aborted);
  out.detail = fmt::format("upload {}: {}", what,
                           !r.problem.empty() ? r.problem
                           : r.error          ? r.error.message()
                                              : "the uplink closed the connection");
  return out;
}

}  // namespace

std::string body_upload::reference() const {
  return fmt::format("{}/{}", core::uploads_path, id);
}

awaitable<upload_outcome> send_as_upload(upstream_connection& conn, const upload_exchange& how,
                                         body_upload& state, std::string_view body) {
  upload_outcome out;
  const std::uint64_t length = body.size();
  if (state.sha256.empty()) {
    const auto digest = core::sha256_of(body);
    state.sha256 = core::base64_encode(
        std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
  }
  const auto give_up = [&](upload_result why, std::string detail) {
    out.result = why;
    out.detail = std::move(detail);
    return out;
  };
  const auto target = [&] { return fmt::format("{}/uploads/{}", how.base_path, state.id); };
  // The offset is known when this uplink said it (a creation or an append made here); through
  // another uplink, or after a cut, it is asked.
  bool offset_known = !state.id.empty() && state.heard_from == how.uplink;
  for (int step = 0; step < 6; ++step) {
    if (state.id.empty()) {
      const auto fields =
          fmt::format("Upload-Length: {}\r\nUpload-Metadata: sha256 {}\r\n", length, state.sha256);
      const auto head =
          request_head("POST", fmt::format("{}/uploads", how.base_path), how, fields, 0);
      auto x = co_await exchange(conn, head, {}, false, how);
      const auto& r = x.response;
      if (r.error) {
        co_return failed(out, r, "creation");
      }
      const auto location = r.head.find(http::field::location);
      const auto id =
          location == r.head.end() ? std::nullopt : core::upload_id_of(location->value());
      if (r.status == 201 && id) {
        state.id = std::string(*id);
        state.heard_from = how.uplink;
        state.stored = 0;
        state.sent_mark = 0;
        offset_known = true;
      }
      if (!r.reusable) {
        co_return failed(out, r, "creation");  // a retry finds the upload, if it was made
      }
      if (r.status == 404 || r.status == 405 || r.status == 501) {
        out.remember_refusal = true;
        co_return give_up(upload_result::inline_body, "the uplink takes no uploads");
      }
      if (state.id.empty()) {
        co_return give_up(upload_result::inline_body,
                          fmt::format("the uplink refused the upload (status {})", r.status));
      }
    }
    if (!offset_known) {
      const auto head = request_head("HEAD", target(), how, {}, std::nullopt);
      auto x = co_await exchange(conn, head, {}, true, how);
      const auto& r = x.response;
      if (r.error || !r.reusable) {
        co_return failed(out, r, "offset request");
      }
      const auto offset = number_field(r, "upload-offset");
      const auto declared = number_field(r, "upload-length");
      if (r.status == 404 || r.status == 410 || (r.status == 200 && declared != length)) {
        state.id.clear();  // not this gateway's, or ended: start again here
        continue;
      }
      if (r.status != 200 || !offset || *offset > length) {
        co_return give_up(
            upload_result::inline_body,
            fmt::format("the uplink's offset answer was not usable (status {})", r.status));
      }
      out.resumed = out.resumed || *offset > 0;
      state.stored = *offset;
      state.heard_from = how.uplink;
      offset_known = true;
    }
    if (state.stored == length) {
      out.result = upload_result::ready;
      co_return out;
    }
    const auto rest = body.substr(static_cast<std::size_t>(state.stored));
    const auto head = request_head("PATCH", target(), how,
                                   fmt::format("Upload-Offset: {}\r\nContent-Type: "
                                               "application/offset+octet-stream\r\n",
                                               state.stored),
                                   rest.size());
    auto x = co_await exchange(conn, head, rest, false, how);
    out.bytes_sent += x.body_written;
    // Written before and now again: what was in flight when an earlier connection broke.
    const auto again = state.sent_mark > state.stored ? state.sent_mark - state.stored : 0;
    out.bytes_resent += std::min<std::uint64_t>(again, x.body_written);
    state.sent_mark = std::max(state.sent_mark, state.stored + x.body_written);
    const auto& r = x.response;
    if (r.error) {
      state.heard_from = static_cast<std::size_t>(-1);  // what it stored: to be asked, anywhere
      co_return failed(out, r, "append");
    }
    // The status first (a refusal of a body the gateway did not read closes the connection).
    if (r.status == 204) {
      const auto offset = number_field(r, "upload-offset");
      if (!offset || *offset > length || *offset < state.stored) {
        co_return give_up(upload_result::inline_body, "the uplink's append answer was not usable");
      }
      state.stored = *offset;
      state.heard_from = how.uplink;
    } else if (r.status == 409) {
      offset_known = false;  // ask again, here or through the next uplink
      state.heard_from = static_cast<std::size_t>(-1);
    } else if (r.status == 404 || r.status == 410) {
      state.id.clear();
    } else {
      state.id.clear();  // 460 (the content is not the body's), 413, ...: not this way
      co_return give_up(upload_result::inline_body,
                        fmt::format("the uplink refused the append (status {})", r.status));
    }
    if (!r.reusable) {
      co_return failed(out, r, "append");
    }
  }
  co_return give_up(upload_result::inline_body, "the upload did not settle in six exchanges");
}

}  // namespace nines::edge
