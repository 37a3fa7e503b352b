// A client connection over TLS (client_transport.hpp): the handshake with the listener's identity,
// then reads and writes through OpenSSL, and a departure watch on the socket beneath.

#include <array>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/client_transport.hpp"
#include "net/deadline_sweep.hpp"
#include "net/departure_watch.hpp"
#include "net/tls_server_identity.hpp"

namespace nines::net {
namespace {

using tls_stream = beast::ssl_stream<tcp::socket>;

// What a client sending plain HTTP to the TLS port reads (it cannot read anything encrypted).
constexpr std::string_view plain_http_answer =
    "HTTP/1.1 400 Bad Request\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 124\r\n"
    "Connection: close\r\n"
    "\r\n"
    R"({"error":{"message":"this port speaks TLS: use https://","type":"invalid_request_error","param":null,"code":"tls_required"}})";
static_assert(plain_http_answer.size() - plain_http_answer.find("\r\n\r\n") - 4 == 124);

class tls_transport final : public client_transport {
 public:
  tls_transport(tcp::socket socket, std::shared_ptr<const tls_server_identity> identity)
      : identity_(std::move(identity)),
        stream_(std::move(socket), identity_->initial_context()),
        reading_(stream_.next_layer()), writing_(stream_.next_layer()),
        watch_(stream_.next_layer(), true) {
    error_code ignored;
    stream_.next_layer().set_option(tcp::no_delay(true), ignored);
  }

  awaitable<bool> handshake(time_point deadline, tls_handshake_failure& failure) {
    auto& low = stream_.next_layer();
    reading_.arm(deadline);
    auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, use_nothrow);
    if (reading_.disarm()) {
      ec = beast::error::timeout;
    }
    if (!ec) {
      co_return true;
    }
    failure = describe(ec);
    if (failure.reason == "plain_http") {
      const std::array<asio::const_buffer, 1> wire{
          asio::buffer(plain_http_answer.data(), plain_http_answer.size())};
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      writing_.arm(until);
      writing_.finish(co_await asio::async_write(low, wire, use_nothrow));
      error_code ignored;
      low.shutdown(tcp::socket::shutdown_send, ignored);
      // Read what the client is still sending (at most 64 KiB, within the same second), so that
      // closing with unread bytes does not reset the connection before it read the answer.
      char sink[4096];
      for (std::size_t drained = 0; drained < 64 * 1024;) {
        reading_.arm(until);
        auto [rec, n] = reading_.finish(co_await low.async_read_some(asio::buffer(sink), use_nothrow));
        if (rec) {
          break;
        }
        drained += n;
      }
    }
    co_return false;
  }

  awaitable<io_result> read_some(asio::mutable_buffer buffer, time_point deadline) override {
    reading_.arm(deadline);
    co_return reading_.finish(co_await stream_.async_read_some(buffer, use_nothrow));
  }

  awaitable<io_result> write(std::span<const asio::const_buffer> buffers,
                             std::chrono::milliseconds timeout) override {
    writing_.arm(std::chrono::steady_clock::now() + timeout);
    co_return writing_.finish(co_await asio::async_write(stream_, buffers, use_nothrow));
  }

  void watch_departure(std::function<void()> on_gone) override { watch_.start(std::move(on_gone)); }
  void stop_watching() override { watch_.stop(); }

  awaitable<void> end_sending(time_point deadline) override {
    auto& low = stream_.next_layer();
    reading_.arm(deadline);
    co_await stream_.async_shutdown(use_nothrow);  // close_notify; theirs, or the deadline
    reading_.disarm();
    error_code ignored;
    low.shutdown(tcp::socket::shutdown_send, ignored);
  }

  void abort(bool reset) override {
    auto& socket = stream_.next_layer();
    error_code ignored;
    if (reset) {
      socket.set_option(asio::socket_base::linger(true, 0), ignored);
    }
    socket.close(ignored);
  }

 private:
  static tls_handshake_failure describe(const error_code& ec) {
    if (ec == beast::error::timeout) {
      return {"timeout", "no handshake before the deadline"};
    }
    if (ec.category() != asio::error::get_ssl_category()) {
      return {"closed", ec.message()};  // end of stream, reset
    }
    std::string detail = ec.message();
    switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_WRONG_VERSION_NUMBER:
        return {"protocol_version", detail};
      case SSL_R_NO_SHARED_CIPHER:
      case SSL_R_NO_SHARED_GROUPS:
        return {"no_shared_cipher", detail};
      case SSL_R_NO_APPLICATION_PROTOCOL:
        return {"no_application_protocol", detail};
      case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        return {"client_certificate_missing", detail};
      case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return {"client_certificate_rejected", detail};
      case SSL_R_HTTP_REQUEST:
        return {"plain_http", detail};
      default:
        return {"other", detail};
    }
  }

  std::shared_ptr<const tls_server_identity> identity_;  // outlives the SSL object using it
  tls_stream stream_;
  deadline reading_;  // also the handshake's and the shutdown's
  deadline writing_;
  departure_watch watch_;
};

}  // namespace

awaitable<std::unique_ptr<client_transport>> accept_tls(
    tcp::socket socket, std::shared_ptr<const tls_server_identity> identity,
    client_transport::time_point deadline, tls_handshake_failure& failure) {
  auto t = std::make_unique<tls_transport>(std::move(socket), std::move(identity));
  const bool ok = co_await t->handshake(deadline, failure);
  if (!ok) {
    t->abort(false);
    co_return nullptr;
  }
  co_return std::unique_ptr<client_transport>(std::move(t));
}

}  // namespace nines::net
