#pragma once
// The server side of HTTP/1.1 for every role (gateway, mock-llm, chaos API): reads requests
// strictly and within bounds (core/http: head grammar, framing, chunked decoding, canonical
// targets), answers what it refuses itself (400, 413, 417, 431, 505 with a JSON error, then a
// lingering close: a connection whose framing is in doubt is never reused), and hands each good
// request to a handler together with a `downstream`: the way back to the client, for a whole
// response or a chunked stream.
//
// Threading: a connection lives on one worker's io_context; its handler and downstream are used
// from that thread only.

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string_view>

#include "core/http/chunked_decoder.hpp"
#include "core/http/message_framing.hpp"
#include "net/client_transport.hpp"
#include "net/read_buffer.hpp"
#include "net/response_sink.hpp"

namespace nines::net {

using request = http::request<http::string_body>;
using std::chrono::milliseconds;

// Sees a request's body as it arrives, piece by piece (the answer cache compares it with the
// requests it kept while the bytes come, so that nothing is left to do at the last byte).
class body_watch {
 public:
  virtual ~body_watch() = default;
  virtual void take(std::string_view piece) = 0;
};

struct server_limits {
  std::size_t max_header_bytes = 64u << 10;  // request line and fields together
  std::size_t max_header_count = 100;        // fields per request
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_chunk_meta_bytes = 4096;   // chunk extensions and trailers of one body
  milliseconds header_timeout{30000};  // to receive one request's header and body
  milliseconds idle_timeout{60000};    // between requests on a keep-alive connection
  milliseconds write_timeout{60000};   // for one write to the client (a stalled reader)
  milliseconds handshake_timeout{10000};  // for a TLS handshake, from the accept
  bool watch_departure = false;        // notice a client leaving while its request is served
  unsigned max_connections = 0;        // open client connections, all workers; 0: no limit
  unsigned max_connections_per_worker = 0;  // 0: no limit of its own
  // Requests whose handler reads the body itself as it arrives (downstream::streamed_body), so
  // that what came before a cut is kept (a tus upload's PATCH); null: every body is read whole
  // before the handler runs.
  bool (*streams_body)(const request& head) = nullptr;
  // A watch for a request's whole body, made from its head and declared length (null: none): fed
  // every piece as it arrives, then given to the handler (downstream::watched_body).
  std::function<std::unique_ptr<body_watch>(const request& head,
                                            std::optional<std::uint64_t> declared_length)>
      watch_body;
};

// A request body as it arrives, decoded from its framing (a length or chunks) and bounded as a
// whole body is. Used by the server to read whole bodies, and by a handler that streams one. A
// client that sent `Expect: 100-continue` is told to go on at the first read, so that a handler
// that refuses first (a tus append at the wrong offset) is not sent the body at all.
class request_body_reader {
 public:
  request_body_reader(client_transport& transport, read_buffer& buffer,
                      const core::request_framing& framing, const server_limits& limits);

  struct piece {
    error_code ec;      // the connection ended or stalled, or the chunked framing is bad
    std::size_t n = 0;  // bytes put in `out`; 0 without an error: the body's end
  };
  // Up to `out.size()` bytes of the body (out must not be empty).
  awaitable<piece> read_some(asio::mutable_buffer out, std::chrono::steady_clock::time_point until);
  // As above, with `progress_timeout` from now: a body that stalls that long is given up.
  awaitable<piece> read_some(asio::mutable_buffer out) {
    co_return co_await read_some(out, std::chrono::steady_clock::now() + progress_timeout_);
  }

  bool done() const { return done_; }
  std::uint64_t received() const { return received_; }
  // Content-Length, when the body declared one.
  std::optional<std::uint64_t> declared_length() const;
  // Why the chunked framing was refused (after an error from read_some), else null.
  const core::request_refusal* refusal() const { return refusal_ ? &*refusal_ : nullptr; }

 private:
  client_transport& transport_;
  read_buffer& buffer_;
  core::request_framing framing_;
  std::optional<core::chunked_decoder> chunked_;
  std::optional<core::request_refusal> refusal_;
  const server_limits& limits_;
  milliseconds progress_timeout_;
  std::uint64_t received_ = 0;
  bool done_ = false;
  bool continue_owed_ = false;  // Expect: 100-continue, answered at the first read
};

// The response side of one exchange: the client's connection.
class downstream final : public response_sink {
 public:
  downstream(client_transport& transport, unsigned version, bool keep_alive, bool head_request,
             milliseconds write_timeout)
      : transport_(transport), version_(version), keep_alive_(keep_alive),
        head_request_(head_request), write_timeout_(write_timeout) {}
  ~downstream() { stop_heartbeat(); }  // joined before this by the session; a second guard
  downstream(const downstream&) = delete;
  downstream& operator=(const downstream&) = delete;

  // A complete response. Content-Length is set from the body, except where a response has no body
  // (1xx, 204, 304: none is sent; an answer to HEAD: the length given, else the body's, and no
  // body is sent).
  awaitable<error_code> send(http::response<http::string_body> response) override;
  // Chunked for HTTP/1.1, close-delimited for HTTP/1.0.
  awaitable<error_code> begin_stream(http::response<http::empty_body> header) override;
  awaitable<error_code> write_chunk(std::string_view data) override;
  awaitable<error_code> end_stream() override;
  awaitable<error_code> finish_stream(std::string_view data) override;
  // A chunked body is cut before its last chunk (a FIN: what was written can still be read); a
  // close-delimited one (HTTP/1.0), whose FIN would read as its end, with a reset.
  void break_stream() override { abort(version_ < 11); }
  // Heartbeats on a streamed body (one writer at a time: a write waits for a beat on the wire).
  // They stop when the body ends; join_heartbeat() waits for the beating coroutine to be gone,
  // which the connection's session does before this object is.
  void beat_while_idle(const asio::any_io_executor& executor, std::chrono::milliseconds every,
                       std::string_view beat) override;
  bool can_beat() const override { return true; }
  awaitable<void> join_heartbeat();

  // Drops the connection at once; with `reset`, the peer sees a TCP RST.
  void abort(bool reset);
  // The client left (the session saw its connection close or reset): the listener, if any, is
  // told at once (a request being forwarded is then cancelled). What is still written goes out: a
  // client that only closed its sending side can read it.
  void client_departed();
  void on_departure(departure_listener* listener) override { listener_ = listener; }
  // The request's body, for a request the handler streams (server_limits::streams_body): null
  // otherwise (its body is in the request). Read to its end or not, the server then knows: a
  // body left unread closes the connection.
  request_body_reader* streamed_body() const { return streamed_body_; }
  void stream_body_from(request_body_reader* reader) { streamed_body_ = reader; }
  bool departed() const override { return departed_; }
  // What watched the request's body as it arrived (server_limits::watch_body); null when nothing
  // did.
  const body_watch* watched_body() const { return watched_body_.get(); }
  void set_watched_body(std::unique_ptr<body_watch> w) { watched_body_ = std::move(w); }
  // A field every response head written from now on carries (set again: its value replaced).
  // Name and value are views: literals, or text that outlives this exchange.
  void stamp(std::string_view name, std::string_view value);

  bool keep_alive() const { return keep_alive_; }
  void close_after() { keep_alive_ = false; }
  bool started() const { return started_; }
  bool finished() const override { return finished_; }
  bool failed() const override { return failed_; }
  std::size_t bytes_sent() const { return bytes_sent_; }
  unsigned version() const override { return version_; }
  // The connection itself, for instruments that misbehave on purpose (mock-llm's faults).
  client_transport& transport() { return transport_; }

 private:
  template <std::size_t N>
  awaitable<error_code> write_buffers(const std::array<asio::const_buffer, N>& buffers);
  struct heartbeat;
  awaitable<void> beat(std::shared_ptr<heartbeat> h);
  void stop_heartbeat();

  client_transport& transport_;
  unsigned version_;
  bool keep_alive_;
  bool head_request_;
  milliseconds write_timeout_;
  bool started_ = false;
  bool chunked_ = false;
  bool finished_ = false;  // the whole response has been written
  bool failed_ = false;
  bool departed_ = false;
  departure_listener* listener_ = nullptr;
  request_body_reader* streamed_body_ = nullptr;
  std::unique_ptr<body_watch> watched_body_;
  std::optional<std::pair<std::string_view, std::string_view>> stamp_;
  std::size_t bytes_sent_ = 0;
  std::string frame_;  // serialised header or chunk framing, reused across writes
  bool writing_ = false;  // a write is on the wire
  std::shared_ptr<heartbeat> heartbeat_;
};

using request_handler = std::function<awaitable<void>(request&, downstream&)>;

// Connections of one worker that wait for their next request, so that a drain can close them.
class idle_connections {
 public:
  using handle = std::list<client_transport*>::iterator;
  handle add(client_transport* t) { return list_.insert(list_.end(), t); }
  void remove(handle h) { list_.erase(h); }
  void close_all();
  bool draining() const { return draining_; }
  void begin_drain() {
    draining_ = true;
    close_all();
  }

 private:
  std::list<client_transport*> list_;
  bool draining_ = false;
};

// Serves requests on one connection until it closes. Never throws.
awaitable<void> serve_connection(std::unique_ptr<client_transport> transport,
                                 request_handler handler, server_limits limits,
                                 idle_connections& idle);

// A JSON error response with the right status, for answers the server side makes itself.
http::response<http::string_body> json_error_response(unsigned version, http::status status,
                                                      std::string_view type,
                                                      std::string_view message,
                                                      std::string_view code = {});

// The answer to a connection over the connection limit, written before anything is read.
std::string_view over_capacity_response();

}  // namespace nines::net
