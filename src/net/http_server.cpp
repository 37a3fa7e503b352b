#include "net/http_server.hpp"

#include <array>
#include <spdlog/spdlog.h>

#include "core/http/openai_error.hpp"
#include "net/http_wire.hpp"
#include "net/spawn.hpp"

namespace nines::net {

template <class Buffers>
awaitable<error_code> downstream::write_buffers(const Buffers& buffers) {
  stream_.expires_after(write_timeout_);
  auto [ec, n] = co_await asio::async_write(stream_, buffers, use_nothrow);
  bytes_sent_ += n;
  if (ec) {
    failed_ = true;
  }
  co_return ec;
}

awaitable<error_code> downstream::send(http::response<http::string_body> response) {
  started_ = true;
  response.version(version_);
  response.keep_alive(keep_alive_);
  response.prepare_payload();
  frame_.clear();
  append_response_header(frame_, response.base());
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(frame_),
                                                  asio::buffer(response.body())};
  auto ec = co_await write_buffers(buffers);
  finished_ = !ec;
  co_return ec;
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
  frame_.clear();
  append_response_header(frame_, header.base());
  co_return co_await write_buffers(asio::buffer(frame_));
}

awaitable<error_code> downstream::write_chunk(std::string_view data) {
  if (data.empty()) {
    co_return error_code{};
  }
  if (!chunked_) {
    co_return co_await write_buffers(asio::buffer(data.data(), data.size()));
  }
  frame_.clear();
  append_chunk_size(frame_, data.size());
  const std::array<asio::const_buffer, 3> buffers{
      asio::buffer(frame_), asio::buffer(data.data(), data.size()), asio::buffer("\r\n", 2)};
  co_return co_await write_buffers(buffers);
}

awaitable<error_code> downstream::end_stream() { co_return co_await finish_stream({}); }

awaitable<error_code> downstream::finish_stream(std::string_view data) {
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
  failed_ = true;
  keep_alive_ = false;
  error_code ignored;
  if (reset) {
    stream_.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  }
  stream_.socket().close(ignored);
}

void idle_connections::close_all() {
  for (auto* s : list_) {
    error_code ignored;
    s->socket().shutdown(tcp::socket::shutdown_both, ignored);
    s->socket().close(ignored);
  }
  // Entries stay: each connection removes its own when its read returns.
}

http::response<http::string_body> json_error_response(unsigned version, http::status status,
                                                      std::string_view type,
                                                      std::string_view message) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = core::openai_error_body(type, message);
  return res;
}

namespace {

// Answers a request the server could not read, then the connection is closed.
awaitable<void> reject(beast::tcp_stream& stream, http::status status, std::string_view type,
                       const std::string& message, milliseconds write_timeout) {
  auto res = json_error_response(11, status, type, message);
  res.keep_alive(false);
  res.prepare_payload();
  stream.expires_after(write_timeout);
  auto [ec, n] = co_await http::async_write(stream, res, use_nothrow);
  if (ec) {
    co_return;
  }
  // Lingering close: the client may still be sending the body we refused. Closing at once would
  // make our kernel answer its data with a reset, which can destroy the response before the client
  // reads it. So stop sending, then read and discard for a bounded time and size.
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::seconds(2));
  static constexpr std::size_t linger_limit = 64u << 20;
  std::size_t discarded = 0;
  char sink[16384];
  while (discarded < linger_limit) {
    auto [rec, rn] = co_await stream.async_read_some(asio::buffer(sink), use_nothrow);
    if (rec) {
      break;
    }
    discarded += rn;
  }
}

awaitable<void> serve(tcp::socket socket, request_handler handler, server_limits limits,
                      idle_connections& idle) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  bool first = true;
  while (!idle.draining()) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    stream.expires_after(first && buffer.size() == 0 ? limits.header_timeout
                                                     : limits.idle_timeout);
    const auto idle_handle = idle.add(&stream);
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_nothrow);
    idle.remove(idle_handle);
    first = false;
    if (ec == http::error::end_of_stream || ec == asio::error::eof ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
      break;
    }
    if (ec == http::error::body_limit) {
      {
        const std::string message = "request body exceeds the limit of " +
                          std::to_string(limits.max_body_bytes) + " bytes";
        co_await reject(stream, http::status::payload_too_large, "request_too_large", message, limits.write_timeout);
      }
      break;
    }
    if (ec == http::error::header_limit) {
      {
        const std::string message = "request header exceeds the limit of " +
                          std::to_string(limits.max_header_bytes) + " bytes";
        co_await reject(stream, http::status::request_header_fields_too_large, "invalid_request_error", message, limits.write_timeout);
      }
      break;
    }
    if (ec) {
      {
        const std::string message = "malformed HTTP request: " + ec.message();
        co_await reject(stream, http::status::bad_request, "invalid_request_error", message, limits.write_timeout);
      }
      break;
    }
    const auto& header = parser.get();
    if (beast::iequals(header[http::field::expect], "100-continue")) {
      http::response<http::empty_body> cont{http::status::continue_, header.version()};
      stream.expires_after(limits.write_timeout);
      auto [wec, wn] = co_await http::async_write(stream, cont, use_nothrow);
      if (wec) {
        break;
      }
    }
    stream.expires_after(limits.header_timeout);
    auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_nothrow);
    if (bec == http::error::body_limit) {
      {
        const std::string message = "request body exceeds the limit of " +
                          std::to_string(limits.max_body_bytes) + " bytes";
        co_await reject(stream, http::status::payload_too_large, "request_too_large", message, limits.write_timeout);
      }
      break;
    }
    if (bec == beast::error::timeout || bec == http::error::partial_message ||
        bec == asio::error::connection_reset || bec == asio::error::eof) {
      break;
    }
    if (bec) {
      {
        const std::string message = "malformed HTTP request body: " + bec.message();
        co_await reject(stream, http::status::bad_request, "invalid_request_error", message, limits.write_timeout);
      }
      break;
    }
    request req = parser.release();
    stream.expires_never();
    downstream down(stream, req.version(), req.keep_alive() && !idle.draining(),
                    limits.write_timeout);
    co_await handler(req, down);
    if (down.failed() || !down.keep_alive()) {
      break;
    }
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

}  // namespace

awaitable<void> serve_connection(tcp::socket socket, request_handler handler,
                                 server_limits limits, idle_connections& idle) {
  try {
    co_await serve(std::move(socket), std::move(handler), limits, idle);
  } catch (const std::exception& e) {
    // A bug, not an input problem: contain it to this connection, and count it.
    escaped_exceptions().fetch_add(1, std::memory_order_relaxed);
    spdlog::error("connection ended by an unexpected exception: {}", e.what());
  }
}

}  // namespace nines::net
