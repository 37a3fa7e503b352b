// One attempt of a request on one upstream: take a connection, send the request, read the head;
// then a retryable status (kept for the client in case every attempt fails), a whole answer (read
// completely before anything is sent), or a stream (stream_relay.cpp).

#include <fmt/format.h>
#include <memory>
#include <spdlog/spdlog.h>

#include "core/obs/trace_context.hpp"
#include "core/stream/stream_journal.hpp"
#include "gateway/http_headers.hpp"
#include "gateway/request_forwarder.hpp"
#include "net/http_wire.hpp"

namespace nines::gateway {

using namespace net;
using core::attempt_failure;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t read_chunk_bytes = 16 * 1024;
constexpr std::size_t kept_error_body_bytes = 64 * 1024;

template <class Rep, class Period>
milliseconds clamp_ms(std::chrono::duration<Rep, Period> d) {
  return std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(d));
}

bool is_event_stream(const http::fields& headers) {
  const auto type = headers[http::field::content_type];
  return type.size() >= 17 && beast::iequals(type.substr(0, 17), "text/event-stream");
}

// While an attempt runs, its race can close its connection; once it ends, it must not.
struct tracked_connection {
  attempt_context& ctx;
  ~tracked_connection() { ctx.track(nullptr); }
};

// An error answer kept for the client, should every attempt fail: its status, headers and a bounded
// part of its body (read within 2 s).
struct kept_error {
  kept_response answer;
  bool reusable = true;  // the body was read to its end
};
awaitable<kept_error> keep_error_answer(upstream_response& response, upstream_connection& conn,
                                        milliseconds time_left) {
  kept_error out;
  out.answer.status = response.head().result_int();
  copy_response_headers(response.head(), out.answer.headers);
  char buf[read_chunk_bytes];
  conn.expires_after(std::min(milliseconds(2000), time_left));
  while (!response.done() && out.answer.body.size() < kept_error_body_bytes) {
    std::size_t got = 0;
    if (co_await response.read_some(buf, sizeof buf, got)) {
      out.reusable = false;
      break;
    }
    out.answer.body.append(buf, got);
  }
  out.reusable = out.reusable && response.done() && response.reusable();
  co_return out;
}

}  // namespace

void request_forwarder::append_upstream_request_head(std::string& head, std::size_t upstream,
                                                     const std::string* secret,
                                                     std::string_view upload_location) const {
  const auto& u = cfg_.upstreams[upstream];
  // Client path /v1/<rest> maps to <upstream base path>/<rest>.
  std::string_view target = req_.target();
  if (target.starts_with("/v1")) {
    target.remove_prefix(3);
  }
  if (continuing_ && !responses_as_chat_.empty()) {
    target = "/chat/completions";  // a Responses stream continued through chat
  }
  const auto method = req_.method_string();
  head.append(method.data(), method.size()).push_back(' ');
  head.append(u.base_path).append(target).append(" HTTP/1.1\r\n");
  // A client key is the gateway's own credential: never forwarded, even where the upstream
  // takes none.
  append_request_headers(req_.base(), head,
                         gen_->credentials[upstream] != nullptr || kind_.client_key);
  head.append("Host: ").append(u.host);
  if (u.port != (u.tls ? 443 : 80)) {
    head.push_back(':');
    append_decimal(head, u.port);
  }
  head.append("\r\n");
  if (secret != nullptr) {
    head.append("Authorization: Bearer ").append(*secret).append("\r\n");
  }
  head.append("x-request-id: ").append(record_.id).append("\r\n");
  if (u.heartbeat.count() > 0) {
    // A nines gateway beats on this stream's silences; another server ignores the field.
    head.append("x-nines-heartbeat-ms: ");
    append_decimal(head, static_cast<std::uint64_t>(u.heartbeat.count()));
    head.append("\r\n");
  }
  if (!record_.trace_id.empty()) {
    head.append("traceparent: ");
    core::append_traceparent(head, record_.trace_id, record_.span_id, record_.trace_flags);
    head.append("\r\n");
  }
  // As Beast's prepare_payload: a length whenever there is a body, and for the methods that
  // expect one even when it is empty.
  const auto verb = req_.method();
  if (!upload_location.empty()) {
    // The body is an upload of the uplink's (edge/upload_sender.hpp): named, not sent.
    head.append("Nines-Upload: ").append(upload_location).append("\r\nContent-Length: 0\r\n");
  } else if (!body_.empty() || verb == http::verb::post || verb == http::verb::put ||
             verb == http::verb::options) {
    head.append("Content-Length: ");
    append_decimal(head, body_.size());
    head.append("\r\n");
  }
  head.append("\r\n");
}

void request_forwarder::stop_cancelled(attempt_result& r, const attempt_context& ctx) {
  if (ctx.client_gone()) {
    r.client_left = true;
    r.end = phase::failed;
    r.detail = "the client left";
    return;
  }
  r.lost_race = true;
  r.slow_connect = ctx.race != nullptr && ctx.race->outpaced[ctx.id];
  r.failure = attempt_failure::reset;
  r.detail = r.slow_connect ? "another path worked first (connect race)"
                            : "another attempt answered first (hedge)";
}

awaitable<attempt_result> request_forwarder::attempt(std::size_t upstream, attempt_context& ctx) {
  auto& pool = *pools_->pools[upstream];
  auto& live = gen_->live;
  attempt_result result;
  const auto time_left = [&] { return clamp_ms(deadline_ - steady::now()); };
  const auto lost = [&](attempt_result& r) { stop_cancelled(r, ctx); };
  const bool to_head = req_.method() == http::verb::head;

  if (continuing_ && kind_.dialect == core::stream_dialect::responses &&
      !cfg_.upstreams[upstream].resume_responses) {
    result.failure = attempt_failure::not_continuable;
    result.detail = "responses_resume is \"none\" for this upstream";
    co_return result;
  }
  if (continuing_) {
    const bool via_chat = !responses_as_chat_.empty();
    auto body = core::build_continuation(via_chat ? std::string_view(responses_as_chat_)
                                                  : std::string_view(req_.body()),
                                         kind_.chat || via_chat, committed_.progress,
                                         cfg_.upstreams[upstream].resume,
                                         cfg_.upstreams[upstream].resume_reasoning, result.detail);
    if (!body) {
      // Nothing was sent: the request or this upstream's settings say no. Not its failure.
      result.failure = attempt_failure::not_continuable;
      co_return result;
    }
    continuation_body_ = std::move(*body);
    body_ = continuation_body_;
  }
  // The credential this attempt sends; a 401 or 403 moves it to the next one (below).
  const auto& creds = gen_->credentials[upstream];
  std::optional<upstream_credentials::choice> credential;
  std::uint64_t refused_slots = 0;
  if (creds) {
    credential = creds->choose(steady::now(), 0);
    if (!credential) {
      result.failure = attempt_failure::credential_rejected;
      result.detail = "no usable credential (a token not fetched yet, or an unreadable key file)";
      co_return result;
    }
  }
  std::string request_head;
  std::string upload_head;  // the request naming its upload, when the body went as one
  bool via_upload = false;
  std::string used_upload;  // the upload this attempt's request named
  std::optional<upstream_response> response;
  std::unique_ptr<upstream_connection> conn;
  tracked_connection untrack_at_exit{ctx};
  for (unsigned credential_try = 1;; ++credential_try) {  // once per credential sent
  request_head.clear();
  append_upstream_request_head(request_head, upstream,
                               credential ? credential->secret.get() : nullptr);
  response.reset();
  for (int round = 0;; ++round) {
    if (!conn) {
      if (ctx.cancelled()) {
        lost(result);  // claimed by the other attempt before this one began
        co_return result;
      }
      auto& cancel = ctx.request->acquiring[ctx.id];
      if (!ctx.request->client_gone) {
        cancel = acquire_cancel{};  // an earlier attempt's (a lost connect race) is over
      }
      auto outcome = co_await pool.acquire(std::min(cfg_.timeouts.connect, time_left()), &cancel);
      if (ctx.cancelled()) {
        if (outcome.connection) {
          pool.give_back(std::move(outcome.connection), steady::now());  // unused: kept warm
        }
        lost(result);
        co_return result;
      }
      if (!outcome.connection) {
        result.failure = outcome.failure;
        result.overflow = outcome.overflow;
        result.detail = outcome.overflow
                            ? fmt::format("max_connections ({}) open and max_pending ({}) waiting",
                                          pool.settings().max_connections,
                                          pool.settings().max_pending)
                            : outcome.why();
        co_return result;
      }
      conn = std::move(outcome.connection);
      ctx.track(conn.get());
      // A connect just done: the path works. A request sent on a pooled connection shows it
      // by being acknowledged; but only one that may be sent twice is raced once sent (the
      // model routes and reads: at temperature 0 a second copy is the same work, not a second
      // effect). Any other is raced only while it connects.
      if (ctx.race != nullptr && (!conn->reused() || !may_send_twice())) {
        ctx.race->connected_first(ctx.id);
      }
    }
    if (ctx.race != nullptr && conn->reused() && may_send_twice()) {
      ctx.race->sent_at[ctx.id] = steady::now();
    }
    const bool reused = conn->reused();
    std::string_view send_head = request_head;
    std::string_view send_body = body_;
    via_upload = false;
    if (wants_upload(upstream)) {
      // The body goes first as an upload, resumed where the gateway has it after a cut.
      const auto step = co_await upload_body_first(
          *conn, upstream, credential ? credential->secret.get() : nullptr, reused && round == 0,
          upload_head);
      if (ctx.cancelled()) {
        lost(result);
        co_return result;
      }
      if (step.next == upload_step::then::reconnect) {
        ctx.track(nullptr);  // a pooled connection the uplink had closed: once more, fresh
        conn.reset();
        continue;
      }
      if (step.next == upload_step::then::fail) {
        result.failure = step.failure;
        result.detail = step.detail;
        co_return result;
      }
      if (step.next == upload_step::then::send_named) {
        via_upload = true;
        used_upload = upload_.id;
        send_head = upload_head;
        send_body = {};
      }
    }
    conn->expires_after(std::min(cfg_.timeouts.first_byte, time_left()));
    const std::array<asio::const_buffer, 2> wire{
        asio::buffer(send_head.data(), send_head.size()),
        asio::buffer(send_body.data(), send_body.size())};
    auto [wec, wn] = co_await conn->write(wire);
    if (!wec) {
      response.emplace(*conn, to_head, 64 * 1024, cfg_.limits.max_chunk_meta_bytes);
      const auto rec = co_await response->read_head();
      if (!rec) {
        if (ctx.cancelled()) {
          lost(result);  // given up while its answer was on the way
          co_return result;
        }
        if (ctx.race != nullptr && !ctx.race->connected[ctx.id]) {
          ctx.race->connected_first(ctx.id);  // it answered: the path works
        }
        break;
      }
      wec = rec;
      if (ctx.cancelled()) {
        lost(result);
        co_return result;
      }
      if (rec == beast::error::timeout) {
        result.failure = attempt_failure::first_byte_timeout;
        result.detail = "no response header in time";
        co_return result;
      }
    }
    if (ctx.cancelled()) {
      lost(result);
      co_return result;
    }
    // A kept-alive connection the server had already closed: try once more on a fresh one; this
    // is not a new attempt, since the request never reached a server that would process it.
    const bool dropped = wec == asio::error::eof || wec == asio::error::connection_reset ||
                         wec == asio::error::broken_pipe;
    if (reused && round == 0 && dropped) {
      ctx.track(nullptr);
      conn.reset();
      continue;
    }
    result.failure = dropped     ? attempt_failure::reset
                     : wn == 0   ? attempt_failure::write_error
                                 : attempt_failure::bad_response;
    result.detail = response && !response->problem().empty() ? response->problem() : wec.message();
    co_return result;
  }

  const unsigned refused_status = response->head().result_int();
  if (!credential || (refused_status != 401 && refused_status != 403)) {
    if (credential) {
      creds->accepted(*credential);
    }
    break;
  }
  // The upstream refused this credential: it cools down, and the request goes on with the next
  // one (at most three per attempt), then to the next upstream with the upstream's answer kept
  // for the client, should every attempt fail.
  auto kept = co_await keep_error_answer(*response, *conn, time_left());
  ctx.track(nullptr);
  if (kept.reusable) {
    pool.give_back(std::move(conn), steady::now());
  } else {
    conn->close();
  }
  conn.reset();
  const auto now = steady::now();
  const auto cooldown = creds->refused(*credential, now, worker_.index);
  if (worker_.credential_refusal_logged.allow(upstream, cfg_.upstreams.size(), now)) {
    spdlog::warn("upstream {} refused its credential {} (status {}): cooling down for {} s",
                 cfg_.upstreams[upstream].name, creds->label(credential->slot), refused_status,
                 std::chrono::duration_cast<std::chrono::seconds>(cooldown).count());
  }
  refused_slots |= std::uint64_t{1} << credential->slot;
  // An OAuth token gets one forced refresh; the fresh token is then tried like a new key.
  const bool fresh = co_await creds->refreshed_after(*credential, worker_.index, time_left());
  auto next = credential_try < 3 ? creds->choose(steady::now(), fresh ? 0 : refused_slots)
                                 : std::nullopt;
  if (!next || ctx.cancelled()) {
    if (ctx.cancelled()) {
      lost(result);
      co_return result;
    }
    result.status = refused_status;
    result.failure = attempt_failure::credential_rejected;
    result.detail = fmt::format("status {} to credential {}", refused_status,
                                creds->label(credential->slot));
    result.response = std::move(kept.answer);
    co_return result;
  }
  credential = std::move(next);
  }  // the next credential

  const auto& head = response->head();
  const unsigned status = head.result_int();
  result.status = status;
  bool reusable = true;  // unless something below says otherwise; the response has its say too
  const auto release = [&] {
    ctx.track(nullptr);
    if (reusable && response->reusable()) {
      pool.give_back(std::move(conn), steady::now());
    } else {
      conn->close();
    }
  };

  const bool stream_ok = status / 100 == 2 && is_event_stream(head) && !to_head;
  if (continuing_ && !stream_ok) {
    // A continuation must be a stream; any other answer cannot be spliced into the client's.
    conn->close();
    result.failure = core::is_retryable_status(cfg_.retry.policy, status)
                         ? attempt_failure::retryable_status
                         : attempt_failure::bad_response;
    result.detail = fmt::format("continuation answered status {}", status);
    co_return result;
  }
  if (core::is_retryable_status(cfg_.retry.policy, status)) {
    auto kept_error = co_await keep_error_answer(*response, *conn, time_left());
    reusable = kept_error.reusable;
    auto& kept = kept_error.answer;
    if (auto ra = head.find(http::field::retry_after); ra != head.end()) {
      result.retry_after = core::parse_retry_after(ra->value());
      if (result.retry_after) {
        live.retry_after(upstream, steady::now() + *result.retry_after);
      }
    }
    release();
    result.failure = attempt_failure::retryable_status;
    result.detail = fmt::format("status {}", status);
    result.response = std::move(kept);
    co_return result;
  }

  if (stream_ok) {
    record_.stream = true;
    result = co_await relay_stream(*conn, *response, upstream, reusable, ctx);
    result.status = status;
    if (result.lost_race || result.client_left) {
      lost(result);
    }
  } else {
    // A whole response is read before anything is sent: a break in its middle can be retried,
    // and the client never gets a 200 that is not complete.
    std::string body;
    // On the heap, not in the frame: a running stream's frame keeps everything in it alive.
    const auto buf = std::make_unique_for_overwrite<char[]>(read_chunk_bytes);
    conn->expires_after(clamp_ms(start_ + cfg_.timeouts.request - steady::now()));
    while (!response->done()) {
      std::size_t got = 0;
      if (auto ec = co_await response->read_some(buf.get(), read_chunk_bytes, got)) {
        conn->close();
        if (ctx.cancelled()) {
          lost(result);
          co_return result;
        }
        result.failure = ec == beast::error::timeout ? attempt_failure::first_byte_timeout
                         : ec == upstream_wire_error::bad_message ? attempt_failure::bad_response
                                                                  : attempt_failure::reset;
        result.detail = "response body: " +
                        (response->problem().empty() ? ec.message() : response->problem());
        co_return result;
      }
      body.append(buf.get(), got);
      if (body.size() > cfg_.limits.max_response_bytes) {
        conn->close();
        result.failure = attempt_failure::response_too_large;
        result.detail = fmt::format("response over {} bytes", cfg_.limits.max_response_bytes);
        co_return result;
      }
    }
    if (via_upload && (status == 404 || status == 409 || status == 410) &&
        body.find("\"upload_") != std::string::npos) {
      // The gateway no longer has the upload (used by an answer this edge never got, or
      // expired): the next attempt uploads again (unless another attempt moved it on).
      // One that another request holds right now (an earlier attempt's, still being answered)
      // is the same upload: the retry names it again.
      const bool in_use = body.find("\"upload_in_use\"") != std::string::npos;
      if (!in_use && !upload_.busy && upload_.id == used_upload) {
        upload_.id.clear();
      }
      release();
      result.failure = attempt_failure::reset;
      result.detail = fmt::format("the uplink no longer has the upload (status {})", status);
      co_return result;
    }
    if (!ctx.claim()) {
      conn->close();
      lost(result);
      co_return result;
    }
    if (kind_.ticket != nullptr) {
      record_.usage_tokens = core::read_stream_chunk(body).total_tokens;  // the answer's usage
      if (record_.usage_tokens) {
        kind_.ticket->settle_tokens(*record_.usage_tokens, steady::now());
      }
    }
    http::response<http::string_body> res{head.result(), 11};
    copy_response_headers(head, res.base());
    if (const auto length = head.find(http::field::content_length);
        to_head && length != head.end()) {
      res.set(http::field::content_length, length->value());  // what a GET would have had
    }
    res.set("x-request-id", record_.id);
    res.body() = std::move(body);
    note_delivery(upstream, ctx);
    record_.status = status;
    co_await client_.send(std::move(res));
    result.end = client_.failed() ? phase::failed : phase::finished;
    if (client_.failed()) {
      record_.outcome = "client_closed";
    }
  }
  release();
  co_return result;
}

}  // namespace nines::gateway
