#include "gateway/forwarder.hpp"

#include <array>
#include <fmt/format.h>
#include <optional>

#include "core/json_probe.hpp"
#include "core/json_text.hpp"
#include "core/openai_error.hpp"
#include "core/retry_policy.hpp"
#include "core/sse_parser.hpp"
#include "core/stream_continuation.hpp"
#include "core/stream_journal.hpp"
#include "core/upstream_selector.hpp"
#include "gateway/http_headers.hpp"
#include "gateway/journal_relay.hpp"
#include "net/http_wire.hpp"

namespace nines::gateway {
namespace {

using namespace net;
using core::attempt_failure;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

using upstream_request = http::request<http::span_body<const char>>;
using upstream_parser = http::response_parser<http::buffer_body>;

constexpr std::size_t read_chunk_bytes = 16 * 1024;
constexpr std::size_t kept_error_body_bytes = 64 * 1024;

// The phases of one upstream response on its way to the client (the stream state machine). The
// request moves through them once per upstream it uses: a stream that breaks while `relaying`
// is resumed on another upstream, whose response starts again at `awaiting_first_byte` (with the
// client's header already sent) until its first event that carries something.
enum class phase {
  awaiting_first_byte,  // this upstream has sent the client nothing: a failure tries another
  relaying,             // this upstream's events reach the client; a break means resume
  finished,             // complete response delivered
  failed,               // ended: the client went away or got an explicit error
};

// A retryable upstream answer kept to give the client when every attempt fails.
struct kept_response {
  unsigned status = 0;
  http::fields headers;
  std::string body;
};

struct attempt_result {
  phase end = phase::awaiting_first_byte;  // finished/failed: the client got its answer
  attempt_failure failure = attempt_failure::none;
  core::stream_break cause = core::stream_break::reset;  // how a relayed stream broke
  std::string detail;
  std::optional<milliseconds> retry_after;
  std::optional<kept_response> response;
};

double ms_between(steady::time_point from, steady::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

double ms_since(steady::time_point t) { return ms_between(t, steady::now()); }

template <class Rep, class Period>
milliseconds clamp_ms(std::chrono::duration<Rep, Period> d) {
  return std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(d));
}

bool is_event_stream(const http::fields& headers) {
  const auto type = headers[http::field::content_type];
  return type.size() >= 17 && beast::iequals(type.substr(0, 17), "text/event-stream");
}

class request_forwarder {
 public:
  request_forwarder(request& req, net::response_sink& client, worker_state& worker,
                    obs::request_record& record, std::string stream_key, request_kind kind)
      : req_(req), client_(client), worker_(worker), shared_(*worker.shared),
        cfg_(*shared_.config), record_(record), start_(steady::now()),
        deadline_(start_ + cfg_.retry.deadline), body_(req.body()),
        stream_key_(std::move(stream_key)), inspect_events_(kind.openai_json),
        chat_(kind.chat) {}

  awaitable<void> run();

 private:
  awaitable<attempt_result> attempt(std::size_t upstream);
  awaitable<attempt_result> relay_stream(upstream_connection& conn, upstream_parser& parser,
                                         std::size_t upstream, bool& reusable);
  awaitable<error_code> read_some(upstream_connection& conn, upstream_parser& parser, char* buf,
                                  std::size_t size, std::size_t& got);
  upstream_request make_upstream_request(std::size_t upstream) const;
  awaitable<void> answer_all_failed(const std::optional<kept_response>& kept,
                                    attempt_failure failure, const std::string& why);
  void note_first_byte() {
    if (record_.ttfb_ms < 0) {
      record_.ttfb_ms = ms_since(start_);
    }
  }

  request& req_;
  net::response_sink& client_;
  worker_state& worker_;
  shared_state& shared_;
  const core::config& cfg_;
  obs::request_record& record_;
  steady::time_point start_;
  steady::time_point deadline_;
  awaitable<void> end_incomplete(const std::string& why);
  awaitable<bool> begin_resume(std::size_t broken_upstream, core::stream_break cause,
                               const std::string& why);
  std::optional<std::string> continuation_for(std::size_t upstream, std::string& why);

  std::string_view body_;        // what attempts send: the client's body, or a continuation
  // Every event to the client carries "id: <stream_key_>:<n>", n counting from 1, so that a client
  // can come back with Last-Event-ID (journaled requests).
  std::string stream_key_;
  std::uint64_t events_sent_ = 0;
  bool inspect_events_ = false;  // OpenAI routes: each event must be JSON or [DONE]
  bool chat_ = false;            // /v1/chat/completions (else /v1/completions when continuing)
  std::string continuation_body_;
  bool client_committed_ = false;  // the client has our response header
  bool continuing_ = false;        // attempts continue a broken stream
  unsigned attempts_at_resume_ = 0;  // attempts made before the latest resume
  core::stream_progress progress_;
  steady::time_point last_client_write_{};  // for the gap a client sees at a resume
  // Tool-call chunks held back until the call is complete (the choice's finish_reason), so that a
  // client never holds half a tool call: a break meanwhile discards them, and the continuation
  // generates the call again, whole.
  std::vector<std::string> held_;
  std::size_t held_bytes_ = 0;
  // Appends `event` for the client with the next id.
  void append_event(std::string& out, core::sse_event& event) {
    event.id = core::format_event_id(stream_key_, ++events_sent_);
    core::append_sse_event(out, event);
  }
  void append_data_event(std::string& out, std::string data) {
    core::sse_event e;
    e.data = std::move(data);
    append_event(out, e);
  }
  void release_held(std::string& out) {
    for (auto& data : held_) {
      append_data_event(out, std::move(data));
    }
    if (!held_.empty()) {
      progress_.unsupported = true;  // the client has tool-call parts now
    }
    held_.clear();
    held_bytes_ = 0;
  }
  bool gap_pending_ = false;                // a resume waits for its first event to the client
  core::stream_break pending_cause_ = core::stream_break::reset;  // of that resume
  std::string pending_from_;                                      // the upstream it left
};

upstream_request request_forwarder::make_upstream_request(std::size_t upstream) const {
  const auto& u = cfg_.upstreams[upstream];
  upstream_request out;
  out.method(req_.method());
  out.version(11);
  // Client path /v1/<rest> maps to <upstream base path>/<rest>.
  std::string_view target = req_.target();
  if (target.starts_with("/v1")) {
    target.remove_prefix(3);
  }
  std::string path;
  path.reserve(u.base_path.size() + target.size());
  path.append(u.base_path).append(target);
  out.target(path);
  copy_request_headers(req_.base(), out.base(), !u.api_key.empty());
  const bool default_port = u.port == (u.tls ? 443 : 80);
  out.set(http::field::host, default_port ? u.host : u.host + ":" + std::to_string(u.port));
  if (!u.api_key.empty()) {
    out.set(http::field::authorization, "Bearer " + u.api_key);
  }
  out.set("x-request-id", record_.id);
  out.keep_alive(true);
  out.body() = boost::span<const char>(body_.data(), body_.size());
  out.prepare_payload();
  return out;
}

awaitable<error_code> request_forwarder::read_some(upstream_connection& conn,
                                                   upstream_parser& parser, char* buf,
                                                   std::size_t size, std::size_t& got) {
  parser.get().body().data = buf;
  parser.get().body().size = size;
  auto [ec, n] = co_await conn.visit([&](auto& s) {
    return http::async_read_some(s, conn.buffer(), parser, use_nothrow);
  });
  if (ec == http::error::need_buffer) {
    ec = {};
  }
  got = size - parser.get().body().size;
  co_return ec;
}

awaitable<attempt_result> request_forwarder::attempt(std::size_t upstream) {
  auto& pool = worker_.pools[upstream];
  attempt_result result;
  const auto time_left = [&] { return clamp_ms(deadline_ - steady::now()); };

  if (continuing_) {
    auto body = continuation_for(upstream, result.detail);
    if (!body) {
      result.failure = attempt_failure::bad_response;
      co_return result;
    }
    continuation_body_ = std::move(*body);
    body_ = continuation_body_;
  }
  auto conn = pool.take_idle(steady::now());
  auto upstream_req = make_upstream_request(upstream);
  std::string request_head;
  append_request_header(request_head, upstream_req.base());
  std::optional<upstream_parser> parser;
  for (int round = 0;; ++round) {
    if (!conn) {
      auto outcome = co_await pool.connect(std::min(cfg_.timeouts.connect, time_left()));
      if (!outcome.connection) {
        shared_.health.record_connect_failure(upstream, steady::now(), shared_.cooldown);
        result.failure = outcome.failure;
        result.detail = outcome.error.message();
        co_return result;
      }
      conn = std::move(outcome.connection);
    }
    const bool reused = conn->reused();
    conn->tcp().expires_after(std::min(cfg_.timeouts.first_byte, time_left()));
    const std::array<asio::const_buffer, 2> wire{
        asio::buffer(request_head),
        asio::buffer(upstream_req.body().data(), upstream_req.body().size())};
    auto [wec, wn] = co_await conn->visit([&](auto& s) {
      return asio::async_write(s, wire, use_nothrow);
    });
    if (!wec) {
      parser.emplace();
      parser->body_limit(boost::none);
      parser->header_limit(64 * 1024);
      auto [rec, rn] = co_await conn->visit([&](auto& s) {
        return http::async_read_header(s, conn->buffer(), *parser, use_nothrow);
      });
      if (!rec) {
        break;
      }
      wec = rec;
      if (rec == beast::error::timeout) {
        result.failure = attempt_failure::first_byte_timeout;
        result.detail = "no response header in time";
        co_return result;
      }
    }
    // A kept-alive connection the server had already closed: try once more on a fresh one; this
    // is not a new attempt, since the request never reached a server that would process it.
    if (reused && round == 0 &&
        (wec == http::error::end_of_stream || wec == asio::error::eof ||
         wec == asio::error::connection_reset || wec == asio::error::broken_pipe)) {
      conn.reset();
      continue;
    }
    result.failure = wec == http::error::end_of_stream || wec == asio::error::eof ||
                             wec == asio::error::connection_reset || wec == asio::error::broken_pipe
                         ? attempt_failure::reset
                     : wn == 0 ? attempt_failure::write_error
                               : attempt_failure::bad_response;
    result.detail = wec.message();
    co_return result;
  }

  shared_.health.record_success(upstream);
  auto& head = parser->get();
  const unsigned status = head.result_int();
  bool reusable = head.keep_alive();

  const bool stream_ok = status / 100 == 2 && is_event_stream(head.base()) &&
                         req_.method() != http::verb::head;
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
    kept_response kept;
    kept.status = status;
    copy_response_headers(head.base(), kept.headers);
    // Keep a bounded part of the error body for the client, should every attempt fail.
    char buf[read_chunk_bytes];
    conn->tcp().expires_after(std::min(milliseconds(2000), time_left()));
    while (!parser->is_done() && kept.body.size() < kept_error_body_bytes) {
      std::size_t got = 0;
      if (co_await read_some(*conn, *parser, buf, sizeof buf, got)) {
        reusable = false;
        break;
      }
      kept.body.append(buf, got);
    }
    if (auto ra = head.find(http::field::retry_after); ra != head.end()) {
      result.retry_after = core::parse_retry_after(ra->value());
      if (result.retry_after) {
        shared_.health.avoid_until(upstream, steady::now() + *result.retry_after);
      }
    }
    if (reusable && parser->is_done()) {
      pool.give_back(std::move(conn), steady::now());
    } else {
      conn->close();
    }
    result.failure = attempt_failure::retryable_status;
    result.detail = fmt::format("status {}", status);
    result.response = std::move(kept);
    co_return result;
  }

  if (stream_ok) {
    record_.stream = true;
    result = co_await relay_stream(*conn, *parser, upstream, reusable);
  } else {
    // A whole response is read before anything is sent: a break in its middle can be retried,
    // and the client never gets a 200 that is not complete.
    std::string body;
    char buf[read_chunk_bytes];
    conn->tcp().expires_after(clamp_ms(start_ + cfg_.timeouts.request - steady::now()));
    while (!parser->is_done()) {
      std::size_t got = 0;
      if (auto ec = co_await read_some(*conn, *parser, buf, sizeof buf, got)) {
        conn->close();
        result.failure = ec == beast::error::timeout ? attempt_failure::first_byte_timeout
                                                     : attempt_failure::reset;
        result.detail = "response body: " + ec.message();
        co_return result;
      }
      body.append(buf, got);
      if (body.size() > cfg_.limits.max_response_bytes) {
        conn->close();
        result.failure = attempt_failure::response_too_large;
        result.detail = fmt::format("response over {} bytes", cfg_.limits.max_response_bytes);
        co_return result;
      }
    }
    http::response<http::string_body> res{head.result(), 11};
    copy_response_headers(head.base(), res.base());
    res.set("x-request-id", record_.id);
    res.body() = std::move(body);
    note_first_byte();
    record_.status = status;
    co_await client_.send(std::move(res));
    result.end = client_.failed() ? phase::failed : phase::finished;
    if (client_.failed()) {
      record_.outcome = "client_closed";
    }
  }
  if (reusable && parser->is_done()) {
    pool.give_back(std::move(conn), steady::now());
  } else {
    conn->close();
  }
  co_return result;
}

awaitable<attempt_result> request_forwarder::relay_stream(upstream_connection& conn,
                                                          upstream_parser& parser,
                                                          std::size_t upstream, bool& reusable) {
  attempt_result result;
  core::sse_parser sse(cfg_.limits.max_event_bytes);
  std::vector<core::sse_event> events;
  std::string out;
  char buf[read_chunk_bytes];
  phase state = phase::awaiting_first_byte;
  bool saw_done = false;
  attempt_failure broke = attempt_failure::none;
  core::stream_break cause = core::stream_break::reset;
  std::string why;
  const auto request_end = start_ + cfg_.timeouts.request;

  while (state == phase::awaiting_first_byte || state == phase::relaying) {
    const auto now = steady::now();
    const auto limit = state == phase::awaiting_first_byte
                           ? std::min<steady::duration>(cfg_.timeouts.first_byte, deadline_ - now)
                           : std::min<steady::duration>(cfg_.timeouts.stream_idle, request_end - now);
    conn.tcp().expires_after(clamp_ms(limit));
    std::size_t got = 0;
    error_code ec;
    if (!parser.is_done()) {
      ec = co_await read_some(conn, parser, buf, sizeof buf, got);
    }
    if (got > 0 && sse.feed(std::string_view(buf, got), events) != core::sse_error::none) {
      broke = attempt_failure::bad_response;
      cause = core::stream_break::too_large;
      why = "an event exceeded the limit of " + std::to_string(cfg_.limits.max_event_bytes) +
            " bytes";
    }
    for (auto& event : events) {
      if (saw_done || broke != attempt_failure::none) {
        break;
      }
      if (event.data == "[DONE]") {
        saw_done = true;
        release_held(out);
        append_event(out, event);
        continue;
      }
      if (inspect_events_) {
        const auto chunk = core::read_stream_chunk(event.data);
        if (!chunk.valid) {
          broke = attempt_failure::bad_response;
          cause = core::stream_break::malformed;
          why = "malformed event from upstream";
          break;
        }
        if (chunk.is_error) {
          broke = attempt_failure::bad_response;
          cause = core::stream_break::error_event;
          why = "upstream sent an error event: " + event.data.substr(0, 512);
          break;
        }
        if (continuing_) {
          auto rewritten = core::rewrite_continuation_chunk(event.data, progress_);
          if (!rewritten) {
            continue;  // the continuation's own role chunk: the client had one already
          }
          event.data = std::move(*rewritten);
        }
        if (chunk.tool_calls && !chunk.finish_reason) {
          held_bytes_ += event.data.size();
          if (held_bytes_ <= cfg_.limits.max_event_bytes) {
            held_.push_back(std::move(event.data));
            continue;
          }
          // Too large to hold back: pass it on; from here a break cannot be continued.
        }
        release_held(out);
        progress_.record(chunk);
      }
      append_event(out, event);  // our id: the upstream's means nothing to our client
    }
    events.clear();
    if (!out.empty()) {
      if (!client_committed_) {
        http::response<http::empty_body> header{parser.get().result(), 11};
        copy_response_headers(parser.get().base(), header.base());
        header.set(http::field::cache_control, "no-cache");
        header.set("x-request-id", record_.id);
        record_.status = parser.get().result_int();
        note_first_byte();
        client_committed_ = true;
        if (co_await client_.begin_stream(std::move(header))) {
          state = phase::failed;
          break;
        }
      }
      state = phase::relaying;
      if (gap_pending_) {
        // The first event of a continuation: the client waited this long across the resume.
        gap_pending_ = false;
        const double gap_ms = ms_between(last_client_write_, steady::now());
        record_.resume_log += fmt::format(",\"to\":\"{}\",\"gap_ms\":{:.3f}}}",
                                          cfg_.upstreams[upstream].name, gap_ms);
        worker_.probe.stream_resumed(pending_cause_, pending_from_, cfg_.upstreams[upstream].name,
                                     progress_.carried_tokens, gap_ms / 1000.0);
      }
      last_client_write_ = steady::now();
      if (saw_done && parser.is_done()) {
        // The usual end: the last events, [DONE] and the upstream's last chunk came together.
        state = co_await client_.finish_stream(out) ? phase::failed : phase::finished;
        break;
      }
      if (co_await client_.write_chunk(out)) {
        state = phase::failed;
        break;
      }
      out.clear();
    }
    if (saw_done) {
      state = phase::finished;
      break;
    }
    if (broke == attempt_failure::none) {
      if (ec == beast::error::timeout) {
        broke = state == phase::awaiting_first_byte ? attempt_failure::first_byte_timeout
                                                    : attempt_failure::reset;
        cause = core::stream_break::stall;
        why = state == phase::awaiting_first_byte
                  ? "no event in time"
                  : fmt::format("stalled: no data for {} ms", cfg_.timeouts.stream_idle.count());
      } else if (ec) {
        broke = attempt_failure::reset;
        cause = core::stream_break::reset;
        why = "connection broke: " + ec.message();
      } else if (parser.is_done()) {
        broke = attempt_failure::reset;
        cause = core::stream_break::closed;
        why = "stream ended without [DONE]";
      }
    }
    if (broke != attempt_failure::none) {
      break;
    }
  }

  if (client_.failed()) {
    // The client went away: stop the upstream generation by closing its connection.
    reusable = false;
    record_.outcome = "client_closed";
    result.end = phase::failed;
    co_return result;
  }
  if (state == phase::finished) {
    result.end = phase::finished;
    if (client_.finished()) {
      co_return result;
    }
    // Read the end of the upstream body (normally already there) so the connection can be reused.
    conn.tcp().expires_after(milliseconds(1000));
    while (!parser.is_done()) {
      std::size_t got = 0;
      if (co_await read_some(conn, parser, buf, sizeof buf, got)) {
        reusable = false;
        break;
      }
    }
    co_await client_.end_stream();
    co_return result;
  }
  // Broken. Before this upstream sent anything, it is a failed attempt like any other; after,
  // the caller resumes the stream elsewhere or ends it explicitly.
  reusable = false;
  result.end = state;
  result.failure = broke;
  result.cause = cause;
  result.detail = fmt::format("{}: {}", cfg_.upstreams[upstream].name, why);
  co_return result;
}

std::optional<std::string> request_forwarder::continuation_for(std::size_t upstream,
                                                               std::string& why) {
  return core::build_continuation(req_.body(), chat_, progress_, cfg_.upstreams[upstream].resume,
                                  why);
}

awaitable<void> request_forwarder::end_incomplete(const std::string& why) {
  record_.outcome = "stream_incomplete";
  record_.detail = why;
  // openai_error_event is "data: {...}\n\n": its data, with our id like every other event.
  std::string error_data = core::openai_error_event(
      "stream_incomplete",
      fmt::format("the upstream stream broke after the response started and could not be "
                  "continued ({}); the answer is incomplete",
                  why),
      "upstream_stream_broken");
  error_data = error_data.substr(6, error_data.size() - 8);
  std::string out;
  append_data_event(out, std::move(error_data));
  co_await client_.finish_stream(out);
}

awaitable<void> request_forwarder::answer_all_failed(const std::optional<kept_response>& kept,
                                                     attempt_failure failure,
                                                     const std::string& why) {
  record_.outcome = "failed";
  record_.detail = why;
  if (kept) {
    // The last upstream's own answer (a 503 or a 429 with its Retry-After) tells the client most.
    http::response<http::string_body> res{static_cast<http::status>(kept->status), 11};
    for (const auto& h : kept->headers) {
      res.base().insert(h.name(), h.name_string(), h.value());
    }
    res.set("x-request-id", record_.id);
    res.body() = kept->body;
    record_.status = kept->status;
    co_await client_.send(std::move(res));
    co_return;
  }
  const bool timeout = failure == attempt_failure::first_byte_timeout ||
                       failure == attempt_failure::connect_timeout;
  const auto status = timeout ? http::status::gateway_timeout : http::status::bad_gateway;
  auto res = json_error_response(11, status, "upstream_unavailable",
                                 "no upstream could serve the request: " + why);
  res.set("x-request-id", record_.id);
  record_.status = static_cast<unsigned>(status);
  co_await client_.send(std::move(res));
}

// Prepares to continue a stream that broke after the client got part of it, or ends it: with
// [DONE] when only the end was lost, with the stream_incomplete event when it cannot be continued.
// Returns true when the attempt loop is to go on with continuations.
awaitable<bool> request_forwarder::begin_resume(std::size_t broken_upstream,
                                                core::stream_break cause, const std::string& why) {
  if (progress_.finished) {
    std::string done;
    append_data_event(done, "[DONE]");
    co_await client_.finish_stream(done);
    co_return false;
  }
  const bool resumable = inspect_events_ && (chat_ || std::string_view(req_.target())
                                                          .starts_with("/v1/completions"));
  if (!resumable || progress_.unsupported || progress_.resumes >= cfg_.retry.max_resumes) {
    const std::string reason = why + (!resumable              ? "; this route cannot be continued"
                                      : progress_.unsupported ? "; tool calls or several choices"
                                                              : "; resumes exhausted");
    co_await end_incomplete(reason);
    co_return false;
  }
  held_.clear();  // the client never saw them; the continuation makes the call again
  held_bytes_ = 0;
  ++progress_.resumes;
  ++record_.resumes;
  progress_.carried_tokens = progress_.text_chunks;
  // The previous resume_log entry was closed when its continuation reached the client.
  std::string entry = record_.resume_log.empty() ? "{\"cause\":" : ",{\"cause\":";
  core::append_json_string(entry, why);
  entry += fmt::format(",\"from\":\"{}\",\"carried_tokens\":{}",
                       cfg_.upstreams[broken_upstream].name, progress_.text_chunks);
  record_.resume_log += entry;
  gap_pending_ = true;
  pending_cause_ = cause;
  pending_from_ = cfg_.upstreams[broken_upstream].name;
  continuing_ = true;
  // Attempts start afresh; `tried` keeps every upstream this request used, so a chain of breaks
  // moves on to fresh upstreams.
  attempts_at_resume_ = record_.attempts;
  co_return true;
}

awaitable<void> request_forwarder::run() {
  std::vector<core::upstream_candidate> candidates(cfg_.upstreams.size());
  std::uint64_t tried = 0;
  std::optional<std::size_t> previous;
  attempt_result last;
  std::optional<kept_response> kept;
  std::string history;
  for (;;) {
    const auto now = steady::now();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      candidates[i] = {cfg_.upstreams[i].priority, cfg_.upstreams[i].weight,
                       shared_.health.available(i, now)};
    }
    const auto chosen = core::select_upstream(candidates, tried, worker_.random);
    if (!chosen) {
      break;  // no upstream configured: validation prevents it
    }
    if (previous) {
      const auto plan = core::plan_next_attempt(cfg_.retry.policy, last.failure,
                                                record_.attempts - attempts_at_resume_,
                                                deadline_ - now, last.retry_after,
                                                *chosen == *previous, worker_.random);
      if (!plan.retry) {
        history += fmt::format(" ({})", plan.why_not);
        break;
      }
      if (plan.delay.count() > 0) {
        co_await sleep_for(plan.delay);
      }
    }
    if (*chosen < 64) {
      tried |= std::uint64_t{1} << *chosen;
    }
    ++record_.attempts;
    record_.upstreams.push_back(cfg_.upstreams[*chosen].name);
    last = co_await attempt(*chosen);
    if (last.end == phase::finished || last.end == phase::failed) {
      co_return;
    }
    if (last.end == phase::relaying) {
      // The stream broke after the client got part of it.
      history = last.detail;
      if (!co_await begin_resume(*chosen, last.cause, history)) {
        co_return;
      }
      deadline_ = steady::now() + cfg_.retry.deadline;
      previous.reset();
      last = attempt_result{};
      kept.reset();
      continue;
    }
    history += fmt::format("{}{}: {} ({})", history.empty() ? "" : "; ",
                           cfg_.upstreams[*chosen].name, core::to_string(last.failure),
                           last.detail);
    previous = chosen;
    if (last.response) {
      kept = std::move(last.response);  // the most recent upstream answer wins
    }
  }
  if (continuing_) {
    co_await end_incomplete(history);
    co_return;
  }
  co_await answer_all_failed(kept, last.failure, history);
}

}  // namespace

request_kind classify_request(const request& req) {
  const std::string_view target = req.target();
  request_kind kind;
  kind.openai_json = req.method() == http::verb::post &&
                     (target.starts_with("/v1/chat/completions") ||
                      target.starts_with("/v1/completions") || target.starts_with("/v1/embeddings"));
  kind.chat = kind.openai_json && target.starts_with("/v1/chat/completions");
  return kind;
}

awaitable<void> run_attempts(request& req, net::response_sink& sink, worker_state& worker,
                             obs::request_record& record, std::string stream_key,
                             request_kind kind) {
  request_forwarder forwarder(req, sink, worker, record, std::move(stream_key), kind);
  co_await forwarder.run();
}

awaitable<void> forward_request(request& req, downstream& client, worker_state& worker,
                                obs::request_record& record) {
  const auto kind = classify_request(req);
  if (kind.openai_json) {
    // Checked once here, with a validating scan (no DOM): invalid JSON never reaches an upstream.
    auto probe = core::probe_json(req.body());
    if (!probe.valid || !probe.facts.is_object) {
      record.outcome = "rejected";
      record.status = 400;
      const std::string why = probe.valid ? "the request body must be a JSON object" : probe.error;
      auto res = json_error_response(req.version(), http::status::bad_request,
                                     "invalid_request_error", why);
      co_await client.send(std::move(res));
      co_return;
    }
    record.stream = probe.facts.stream.value_or(false);
  }
  if (kind.openai_json && wants_journal(req, *worker.shared->config)) {
    co_await serve_journaled(req, client, worker, record, kind);
    co_return;
  }
  co_await run_attempts(req, client, worker, record, record.id, kind);
}

}  // namespace nines::gateway
