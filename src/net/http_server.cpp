#include "net/http_server.hpp"

#include <array>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/http/chunked_decoder.hpp"
#include "core/http/message_framing.hpp"
#include "core/http/message_head.hpp"
#include "core/http/openai_error.hpp"
#include "core/http/request_target.hpp"
#include "net/http_wire.hpp"
#include "net/read_buffer.hpp"
#include "net/spawn.hpp"
#include "net/wakeup.hpp"

namespace nines::net {

using steady = std::chrono::steady_clock;

struct downstream::heartbeat {
  heartbeat(const asio::any_io_executor& executor, milliseconds interval, std::string bytes)
      : timer(executor), gate(executor), done(executor), every(interval), beat(std::move(bytes)) {}
  asio::steady_timer timer;
  wakeup gate;  // a write that waits for a beat on the wire
  wakeup done;  // join_heartbeat's
  milliseconds every;
  std::string beat;  // framed as the body is (a chunk of its own when chunked)
  steady::time_point last_write;
  bool stopped = false;
  bool running = true;
};

template <std::size_t N>
awaitable<error_code> downstream::write_buffers(const std::array<asio::const_buffer, N>& buffers) {
  while (writing_ && heartbeat_) {
    co_await heartbeat_->gate.wait();  // a heartbeat is on the wire: this goes after it
  }
  if (failed_) {
    co_return make_error_code(asio::error::broken_pipe);  // the beat's write failed meanwhile
  }
  writing_ = true;
  auto [ec, n] = co_await transport_.write(buffers, write_timeout_);
  writing_ = false;
  if (heartbeat_) {
    heartbeat_->last_write = steady::now();
    heartbeat_->gate.notify();
  }
  bytes_sent_ += n;
  if (ec) {
    failed_ = true;
  }
  co_return ec;
}

void downstream::beat_while_idle(const asio::any_io_executor& executor, milliseconds every,
                                 std::string_view beat) {
  if (heartbeat_ || !started_ || finished_ || failed_ || beat.empty()) {
    return;
  }
  std::string framed;
  if (chunked_) {
    append_chunk_size(framed, beat.size());
    framed.append(beat).append("\r\n");
  } else {
    framed.assign(beat);
  }
  heartbeat_ = std::make_shared<heartbeat>(executor, every, std::move(framed));
  heartbeat_->last_write = steady::now();
  spawn(executor, this->beat(heartbeat_), "stream heartbeat");
}

awaitable<void> downstream::beat(std::shared_ptr<heartbeat> h) {
  struct ended {  // join_heartbeat waits for this, whatever way the loop is left
    heartbeat& h;
    ~ended() {
      h.running = false;
      h.done.notify();
    }
  } at_end{*h};
  while (!h->stopped && !failed_ && !finished_) {
    h->timer.expires_at(h->last_write + h->every);
    co_await h->timer.async_wait(use_nothrow);
    if (h->stopped || failed_ || finished_) {
      break;
    }
    const auto now = steady::now();
    if (writing_) {
      h->last_write = now;  // a write under way (a slow reader) is the sign of life: no spin
      continue;
    }
    if (now - h->last_write < h->every) {
      continue;  // something was written meanwhile
    }
    const std::array<asio::const_buffer, 1> buffers{asio::buffer(h->beat)};
    co_await write_buffers(buffers);
  }
}

void downstream::stop_heartbeat() {
  if (heartbeat_ && !heartbeat_->stopped) {
    heartbeat_->stopped = true;
    heartbeat_->timer.cancel();
  }
}

awaitable<void> downstream::join_heartbeat() {
  if (!heartbeat_) {
    co_return;
  }
  stop_heartbeat();
  while (heartbeat_->running) {
    co_await heartbeat_->done.wait();
  }
  heartbeat_.reset();
}

awaitable<error_code> downstream::send(http::response<http::string_body> response) {
  stop_heartbeat();
  started_ = true;
  response.version(version_);
  response.keep_alive(keep_alive_);
  const unsigned status = response.result_int();
  const bool bodiless = status / 100 == 1 || status == 204 || status == 304;
  response.erase(http::field::transfer_encoding);
  const bool has_length = response.find(http::field::content_length) != response.end();
  if (status / 100 == 1 || status == 204) {
    response.erase(http::field::content_length);
  } else if (head_request_) {
    // The length a GET would have: as given (an upstream's), or this body's; none when neither
    // says (an upstream's chunked answer to HEAD).
    if (!has_length && !response.body().empty()) {
      response.content_length(response.body().size());
    }
  } else if (status != 304) {
    response.content_length(response.body().size());
  }
  if (stamp_) {
    response.set(stamp_->first, stamp_->second);
  }
  frame_.clear();
  append_response_header(frame_, response.base());
  const bool with_body = !head_request_ && !bodiless;
  const std::array<asio::const_buffer, 2> buffers{
      asio::buffer(frame_), with_body ? asio::buffer(response.body()) : asio::const_buffer{}};
  auto ec = co_await write_buffers(buffers);
  finished_ = !ec;
  co_return ec;
}

void downstream::stamp(std::string_view name, std::string_view value) {
  stamp_.emplace(name, value);
}

awaitable<error_code> downstream::begin_stream(http::response<http::empty_body> header) {
  started_ = true;
  header.version(version_);
  if (version_ >= 11) {
    chunked_ = true;
    header.chunked(true);
    header.keep_alive(keep_alive_);
  } else {
    keep_alive_ = false;  // HTTP/1.0: the end of the body is the end of the connection
    header.keep_alive(false);
  }
  if (stamp_) {
    header.set(stamp_->first, stamp_->second);
  }
  frame_.clear();
  append_response_header(frame_, header.base());
  const std::array<asio::const_buffer, 1> buffers{asio::buffer(frame_)};
  co_return co_await write_buffers(buffers);
}

awaitable<error_code> downstream::write_chunk(std::string_view data) {
  if (data.empty()) {
    co_return error_code{};
  }
  if (!chunked_) {
    const std::array<asio::const_buffer, 1> buffers{asio::buffer(data.data(), data.size())};
    co_return co_await write_buffers(buffers);
  }
  frame_.clear();
  append_chunk_size(frame_, data.size());
  const std::array<asio::const_buffer, 3> buffers{
      asio::buffer(frame_), asio::buffer(data.data(), data.size()), asio::buffer("\r\n", 2)};
  co_return co_await write_buffers(buffers);
}

awaitable<error_code> downstream::end_stream() { co_return co_await finish_stream({}); }

awaitable<error_code> downstream::finish_stream(std::string_view data) {
  stop_heartbeat();  // nothing may follow the body's end
  if (!chunked_) {
    auto ec = co_await write_chunk(data);
    finished_ = !ec;
    co_return ec;
  }
  frame_.clear();
  if (!data.empty()) {
    append_chunk_size(frame_, data.size());
  }
  const std::size_t head = frame_.size();
  frame_.append(data.empty() ? "0\r\n\r\n" : "\r\n0\r\n\r\n");
  const std::array<asio::const_buffer, 3> buffers{
      asio::buffer(frame_.data(), head), asio::buffer(data.data(), data.size()),
      asio::buffer(frame_.data() + head, frame_.size() - head)};
  auto ec = co_await write_buffers(buffers);
  finished_ = !ec;
  co_return ec;
}

void downstream::abort(bool reset) {
  stop_heartbeat();
  failed_ = true;
  keep_alive_ = false;
  transport_.abort(reset);
}

void downstream::client_departed() {
  if (departed_) {
    return;
  }
  departed_ = true;
  keep_alive_ = false;  // a client that closed its side may still read this answer, no other
  if (listener_ != nullptr) {
    listener_->client_departed();
  }
}

void idle_connections::close_all() {
  for (auto* t : list_) {
    t->abort(false);
  }
  // Entries stay: each connection removes its own when its read returns.
}

http::response<http::string_body> json_error_response(unsigned version, http::status status,
                                                      std::string_view type,
                                                      std::string_view message,
                                                      std::string_view code) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = core::openai_error_body(type, message, code);
  return res;
}

std::string_view over_capacity_response() {
  static const std::string wire = [] {
    auto res = json_error_response(11, http::status::service_unavailable, "server_overloaded",
                                   "the gateway is at its limit of client connections; retry "
                                   "shortly",
                                   "connection_limit");
    res.set(http::field::retry_after, "1");
    res.keep_alive(false);
    res.prepare_payload();
    std::string out;
    append_response_header(out, res.base());
    out += res.body();
    return out;
  }();
  return wire;
}

namespace {

// Empty lines a client may send before a request line (RFC 9112 §2.2 asks servers to ignore at
// least one, which some clients send after a POST body); more is not a client, it is noise.
constexpr unsigned max_leading_empty_lines = 8;

core::request_refusal refusal_for(core::head_problem p, const server_limits& limits) {
  using core::head_problem;
  switch (p) {
    case head_problem::too_large:
      return {431, "request_header_too_large",
              fmt::format("request header exceeds the limit of {} bytes", limits.max_header_bytes)};
    case head_problem::too_many_fields:
      return {431, "too_many_headers",
              fmt::format("request has more than {} header fields", limits.max_header_count)};
    case head_problem::unsupported_version:
      return {505, "http_version_not_supported", std::string(core::describe(p))};
    default:
      return {400, "malformed_request", "malformed HTTP request: " + std::string(core::describe(p))};
  }
}

core::request_refusal refusal_for(core::chunked_problem p, const server_limits& limits) {
  if (p == core::chunked_problem::body_too_large) {
    return {413, "request_too_large",
            fmt::format("request body exceeds the limit of {} bytes", limits.max_body_bytes)};
  }
  if (p == core::chunked_problem::meta_too_large) {
    return {400, "bad_chunked_body",
            fmt::format("chunk extensions and trailers exceed the limit of {} bytes",
                        limits.max_chunk_meta_bytes)};
  }
  return {400, "bad_chunked_body", "malformed chunked body: " + std::string(core::describe(p))};
}

// The end of a connection whose client may still be sending what we will not read: stop sending,
// then read and discard for a bounded time and size, so that the answer we wrote is not destroyed
// by the reset our kernel would send for unread data.
awaitable<void> linger(client_transport& t) {
  const auto until = steady::now() + std::chrono::seconds(2);
  co_await t.end_sending(until);
  static constexpr std::size_t linger_limit = 64u << 20;
  std::size_t discarded = 0;
  char sink[16384];
  while (discarded < linger_limit) {
    auto [rec, rn] = co_await t.read_some(asio::buffer(sink), until);
    if (rec) {
      break;
    }
    discarded += rn;
  }
}

// Answers a request the server refuses, then the connection is closed. Lingering close: the
// client may still be sending what we refused, and closing at once would make our kernel answer
// its data with a reset, which can destroy the response before the client reads it. So stop
// sending, then read and discard for a bounded time and size.
awaitable<void> reject(client_transport& t, const core::request_refusal& refusal,
                       milliseconds write_timeout) {
  const std::string_view type =
      refusal.status == 413 ? "request_too_large" : "invalid_request_error";
  auto res = json_error_response(11, static_cast<http::status>(refusal.status), type,
                                 refusal.message, refusal.code);
  res.keep_alive(false);
  res.prepare_payload();
  std::string wire;
  append_response_header(wire, res.base());
  wire += res.body();
  const std::array<asio::const_buffer, 1> buffers{asio::buffer(wire)};
  auto [ec, n] = co_await t.write(buffers, write_timeout);
  if (ec) {
    co_return;
  }
  co_await linger(t);
}

// The handler's view of a request: Beast's message, built from the checked head. The target is
// the canonical one: what was checked is what routes and what goes upstream.
request make_request(const core::request_head& head, const core::canonical_target& target) {
  request req;
  req.version(head.version);
  const auto verb = http::string_to_verb(head.method);
  if (verb == http::verb::unknown) {
    req.method_string(head.method);
  } else {
    req.method(verb);
  }
  req.target(target.text());
  for (const auto& f : head.fields) {
    req.insert(f.name, f.value);
  }
  return req;
}

}  // namespace

request_body_reader::request_body_reader(client_transport& transport, read_buffer& buffer,
                                         const core::request_framing& framing,
                                         const server_limits& limits)
    : transport_(transport), buffer_(buffer), framing_(framing), limits_(limits),
      progress_timeout_(limits.header_timeout) {
  if (framing.body == core::body_framing::chunked) {
    chunked_.emplace(limits.max_chunk_meta_bytes, limits.max_body_bytes);
  }
  done_ = framing.body == core::body_framing::none ||
          (framing.body == core::body_framing::length && framing.length == 0);
  continue_owed_ = framing.expect_continue && !done_;
}

std::optional<std::uint64_t> request_body_reader::declared_length() const {
  if (framing_.body == core::body_framing::length) {
    return framing_.length;
  }
  if (framing_.body == core::body_framing::none) {
    return 0;
  }
  return std::nullopt;
}

awaitable<request_body_reader::piece> request_body_reader::read_some(
    asio::mutable_buffer out, steady::time_point until) {
  piece p;
  if (done_ || out.size() == 0) {
    co_return p;
  }
  if (continue_owed_) {
    continue_owed_ = false;
    if (buffer_.empty()) {  // the client waits for our word before it sends the body
      static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
      const std::array<asio::const_buffer, 1> buffers{asio::buffer(go_on.data(), go_on.size())};
      auto [wec, wn] = co_await transport_.write(buffers, limits_.write_timeout);
      if (wec) {
        p.ec = wec;
        co_return p;
      }
    }
  }
  auto* dest = static_cast<char*>(out.data());
  if (!chunked_) {
    // A length: what is buffered first, then straight from the connection into `out`.
    const auto left = framing_.length - received_;
    const auto room = static_cast<std::size_t>(std::min<std::uint64_t>(left, out.size()));
    p.n = buffer_.take(dest, room);
    if (p.n == 0) {
      auto [ec, n] = co_await transport_.read_some(asio::buffer(dest, room), until);
      p.ec = ec;
      p.n = ec ? 0 : n;
    }
    received_ += p.n;
    done_ = received_ == framing_.length;
    co_return p;
  }
  for (;;) {
    if (!buffer_.empty()) {
      // At most what fits in `out`: the decoder is given only that much of a chunk's data.
      const auto in = buffer_.data();
      const auto step = chunked_->next(in.substr(0, std::min(in.size(), out.size())));
      if (!step.data.empty()) {
        std::memcpy(dest, step.data.data(), step.data.size());
      }
      buffer_.consume(step.consumed);
      if (chunked_->failed()) {
        refusal_ = refusal_for(chunked_->problem(), limits_);
        p.ec = make_error_code(asio::error::invalid_argument);
        co_return p;
      }
      done_ = chunked_->done();
      if (!step.data.empty() || done_) {
        p.n = step.data.size();
        received_ += p.n;
        co_return p;
      }
      if (step.consumed > 0) {
        continue;
      }
    }
    auto [ec, n] = co_await transport_.read_some(buffer_.space(), until);
    if (ec) {
      p.ec = ec;
      co_return p;
    }
    buffer_.commit(n);
  }
}

namespace {

// Reads a whole body into `body`, which grows as bytes arrive (a declared length is a claim, not
// an allocation), each piece shown to `watch` too when there is one. False when the connection
// ended first or the framing was refused.
awaitable<bool> read_whole_body(request_body_reader& reader, steady::time_point deadline,
                                std::string& body, body_watch* watch) {
  const auto declared = reader.declared_length();
  std::size_t have = 0;
  body.resize(declared ? std::min<std::size_t>(*declared, 64u << 10) : 16384);
  while (!reader.done()) {
    if (have == body.size()) {
      // Four times what arrived when a length was declared (fewer copies of a large body), twice
      // otherwise: what is allocated stays a small multiple of what was received.
      const std::size_t grown = body.size() * (declared ? 4 : 2);
      body.resize(declared ? std::min<std::size_t>(*declared, grown) : grown);
    }
    const auto p = co_await reader.read_some(asio::buffer(body.data() + have, body.size() - have),
                                             deadline);
    if (p.ec) {
      co_return false;
    }
    if (watch != nullptr) {
      watch->take(std::string_view(body.data() + have, p.n));
    }
    have += p.n;
  }
  body.resize(have);
  co_return true;
}

awaitable<void> serve(std::unique_ptr<client_transport> transport, request_handler handler,
                      server_limits limits, idle_connections& idle) {
  client_transport& t = *transport;
  // Room for one head and what a client may pipeline behind it; bodies go to their own string.
  read_buffer buf(limits.max_header_bytes + 16384);
  core::head_scanner scanner(limits.max_header_bytes);
  core::request_head head;
  bool first = true;
  while (!idle.draining()) {
    // 1. The head. Its first byte within the idle time (the header time on a new connection),
    // then the whole head within the header time.
    scanner.reset();
    auto deadline = steady::now() + (first ? limits.header_timeout : limits.idle_timeout);
    first = false;
    bool started = false;
    unsigned empty_lines = 0;
    std::size_t head_size = 0;
    std::optional<core::request_refusal> refusal;
    bool closed = false;
    for (;;) {
      while (buf.data().starts_with("\r\n") && empty_lines <= max_leading_empty_lines) {
        buf.consume(2);
        ++empty_lines;
      }
      if (empty_lines > max_leading_empty_lines) {
        refusal = refusal_for(core::head_problem::bad_start_line, limits);
        break;
      }
      if (!buf.empty() && !started) {
        started = true;
        deadline = steady::now() + limits.header_timeout;
      }
      core::head_problem problem = core::head_problem::none;
      head_size = buf.empty() ? 0 : scanner.scan(buf.data(), problem);
      if (head_size > 0) {
        break;
      }
      if (problem != core::head_problem::none) {
        refusal = refusal_for(problem, limits);
        break;
      }
      const auto space = buf.space();
      if (space.size() == 0) {
        refusal = refusal_for(core::head_problem::too_large, limits);
        break;
      }
      std::optional<idle_connections::handle> waiting;
      if (buf.empty()) {
        waiting = idle.add(&t);  // between requests: a drain may close it
      }
      auto [ec, n] = co_await t.read_some(space, deadline);
      if (waiting) {
        idle.remove(*waiting);
      }
      if (ec) {
        closed = true;  // closed, reset, timed out or drained: nobody to answer
        break;
      }
      buf.commit(n);
    }
    if (closed) {
      break;
    }
    core::request_framing framing;
    core::canonical_target target;
    if (!refusal) {
      const auto p = core::parse_request_head(buf.data().substr(0, head_size),
                                              limits.max_header_count, head);
      if (p != core::head_problem::none) {
        refusal = refusal_for(p, limits);
      }
    }
    if (!refusal) {
      refusal = core::read_request_framing(head, limits.max_body_bytes, framing);
    }
    if (!refusal) {
      if (auto why = core::check_request_target(head.target, target)) {
        refusal = core::request_refusal{400, "bad_request_target", std::move(*why)};
      }
    }
    if (refusal) {
      co_await reject(t, *refusal, limits.write_timeout);
      break;
    }
    request req = make_request(head, target);
    const bool head_request = head.method == "HEAD";
    const unsigned version = head.version;
    buf.consume(head_size);  // `head` points into it: not used below

    // 2. The body, within the header time again (100 Continue, when asked, at its first read).
    deadline = steady::now() + limits.header_timeout;
    request_body_reader body_reader(t, buf, framing, limits);
    const bool streamed = limits.streams_body != nullptr && !body_reader.done() &&
                          limits.streams_body(req);
    std::unique_ptr<body_watch> watch;
    if (!streamed && limits.watch_body) {
      watch = limits.watch_body(req, body_reader.declared_length());
    }
    if (!streamed && !body_reader.done()) {
      std::string body;
      if (!co_await read_whole_body(body_reader, deadline, body,
                                    watch.get())) {
        if (const auto* why = body_reader.refusal()) {
          co_await reject(t, *why, limits.write_timeout);
        }
        break;
      }
      if (framing.body == core::body_framing::chunked) {
        // Trailers were dropped; to the handler the request looks as if its length was declared.
        req.erase(http::field::transfer_encoding);
        req.content_length(body.size());
      }
      req.body() = std::move(body);
    }

    // 3. The answer.
    downstream down(t, version, framing.keep_alive && !idle.draining(), head_request,
                    limits.write_timeout);
    if (streamed) {
      down.stream_body_from(&body_reader);
    }
    if (watch) {
      down.set_watched_body(std::move(watch));
    }
    if (limits.watch_departure && !streamed) {  // a streamed body's own reads see a departure
      t.watch_departure([&down] { down.client_departed(); });
    }
    std::exception_ptr escaped;  // a bug: the handler returns errors as values
    try {
      co_await handler(req, down);
    } catch (...) {
      escaped = std::current_exception();
    }
    co_await down.join_heartbeat();  // its coroutine uses `down`: gone before it is
    if (escaped) {
      std::rethrow_exception(escaped);
    }
    t.stop_watching();
    if (!body_reader.done() && down.finished()) {
      // A body the handler left unread (a refused append): the answer is out; let the client
      // read it before the close rather than reset it with its own unread bytes.
      co_await linger(t);
      t.abort(false);
      co_return;
    }
    if (down.failed() || !down.keep_alive() || !down.finished() || !body_reader.done()) {
      break;  // an answer that did not end properly, or a body left unread: the framing is in doubt
    }
  }
  // Over TLS a close_notify first, and a moment for the client's (a few bytes; bounded).
  const auto until = steady::now() + std::chrono::seconds(1);
  co_await t.end_sending(until);
  t.abort(false);
}

}  // namespace

awaitable<void> serve_connection(std::unique_ptr<client_transport> transport,
                                 request_handler handler, server_limits limits,
                                 idle_connections& idle) {
  try {
    co_await serve(std::move(transport), std::move(handler), limits, idle);
  } catch (const std::exception& e) {
    // A bug, not an input problem: contain it to this connection, and count it.
    escaped_exceptions().fetch_add(1, std::memory_order_relaxed);
    spdlog::error("connection ended by an unexpected exception: {}", e.what());
  }
}

}  // namespace nines::net
