#pragma once
// The server side of HTTP/1.1 for every role (gateway, mock-llm): reads requests with bounded
// header and body sizes and timeouts, answers malformed or oversize ones itself (400, 413, 431 with
// a JSON error, then close), and hands each good request to a handler together with a
// `downstream`: the way back to the client, for a whole response or a chunked stream.
//
// Threading: a connection lives on one worker's io_context; its handler and downstream are used
// from that thread only.

#include <chrono>
#include <functional>
#include <list>
#include <string_view>

#include "net/asio.hpp"
#include "net/response_sink.hpp"

namespace nines::net {

using request = http::request<http::string_body>;
using std::chrono::milliseconds;

struct server_limits {
  std::size_t max_header_bytes = 64u << 10;
  std::size_t max_body_bytes = 32u << 20;
  milliseconds header_timeout{30000};  // to receive one request's header and body
  milliseconds idle_timeout{60000};    // between requests on a keep-alive connection
  milliseconds write_timeout{60000};   // for one write to the client (a stalled reader)
};

// The response side of one exchange: the client's connection.
class downstream final : public response_sink {
 public:
  downstream(beast::tcp_stream& stream, unsigned version, bool keep_alive,
             milliseconds write_timeout)
      : stream_(stream), version_(version), keep_alive_(keep_alive),
        write_timeout_(write_timeout) {}

  awaitable<error_code> send(http::response<http::string_body> response) override;
  // Chunked for HTTP/1.1, close-delimited for HTTP/1.0.
  awaitable<error_code> begin_stream(http::response<http::empty_body> header) override;
  awaitable<error_code> write_chunk(std::string_view data) override;
  awaitable<error_code> end_stream() override;
  awaitable<error_code> finish_stream(std::string_view data) override;

  // Drops the connection at once; with `reset`, the peer sees a TCP RST.
  void abort(bool reset);

  bool keep_alive() const { return keep_alive_; }
  void close_after() { keep_alive_ = false; }
  bool started() const { return started_; }
  bool finished() const override { return finished_; }
  bool failed() const override { return failed_; }
  std::size_t bytes_sent() const { return bytes_sent_; }
  unsigned version() const override { return version_; }
  beast::tcp_stream& stream() { return stream_; }

 private:
  template <class Buffers>
  awaitable<error_code> write_buffers(const Buffers& buffers);

  beast::tcp_stream& stream_;
  unsigned version_;
  bool keep_alive_;
  milliseconds write_timeout_;
  bool started_ = false;
  bool chunked_ = false;
  bool finished_ = false;  // the whole response has been written
  bool failed_ = false;
  std::size_t bytes_sent_ = 0;
  std::string frame_;  // serialised header or chunk framing, reused across writes
};

using request_handler = std::function<awaitable<void>(request&, downstream&)>;

// Connections of one worker that wait for their next request, so that a drain can close them.
class idle_connections {
 public:
  using handle = std::list<beast::tcp_stream*>::iterator;
  handle add(beast::tcp_stream* s) { return list_.insert(list_.end(), s); }
  void remove(handle h) { list_.erase(h); }
  void close_all();
  bool draining() const { return draining_; }
  void begin_drain() {
    draining_ = true;
    close_all();
  }

 private:
  std::list<beast::tcp_stream*> list_;
  bool draining_ = false;
};

// Serves requests on one accepted connection until it closes. Never throws.
awaitable<void> serve_connection(tcp::socket socket, request_handler handler,
                                 server_limits limits, idle_connections& idle);

// A JSON error response with the right status, for answers the server side makes itself.
http::response<http::string_body> json_error_response(unsigned version, http::status status,
                                                      std::string_view type,
                                                      std::string_view message);

}  // namespace nines::net
