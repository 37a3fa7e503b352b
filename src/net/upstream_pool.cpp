#include "net/upstream_pool.hpp"

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace nines::net {

void upstream_connection::close() {
  error_code ignored;
  tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp().socket().close(ignored);
}

std::unique_ptr<upstream_connection> upstream_pool::take_idle(
    std::chrono::steady_clock::time_point now) {
  while (!idle_.empty()) {
    auto connection = std::move(idle_.back());
    idle_.pop_back();
    if (now - connection->idle_since() < idle_timeout_ && connection->tcp().socket().is_open()) {
      return connection;
    }
    connection->close();
  }
  return nullptr;
}

void upstream_pool::give_back(std::unique_ptr<upstream_connection> connection,
                              std::chrono::steady_clock::time_point now) {
  if (idle_.size() >= max_idle_) {
    connection->close();
    return;
  }
  connection->mark_reused();
  connection->set_idle_since(now);
  connection->tcp().expires_never();
  idle_.push_back(std::move(connection));
}

namespace {

core::attempt_failure classify_connect_error(const error_code& ec) {
  if (ec == asio::error::connection_refused) {
    return core::attempt_failure::connect_refused;
  }
  if (ec == beast::error::timeout) {
    return core::attempt_failure::connect_timeout;
  }
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == asio::ssl::error::get_stream_category()) {
    return core::attempt_failure::tls_error;
  }
  return core::attempt_failure::connect_error;
}

}  // namespace

awaitable<connect_outcome> upstream_pool::connect(std::chrono::milliseconds timeout) {
  auto executor = co_await asio::this_coro::executor;
  connect_outcome out;
  beast::tcp_stream stream(executor);
  stream.expires_after(timeout);
  error_code ec;
  const auto address = asio::ip::make_address(target_.host, ec);
  if (!ec) {
    auto [cec] = co_await stream.async_connect(tcp::endpoint(address, target_.port), use_nothrow);
    ec = cec;
  } else {
    tcp::resolver resolver(executor);
    auto [rec, results] =
        co_await resolver.async_resolve(target_.host, std::to_string(target_.port), use_nothrow);
    ec = rec;
    if (!ec) {
      auto [cec, endpoint] = co_await stream.async_connect(results, use_nothrow);
      ec = cec;
    }
  }
  if (ec) {
    out.error = ec;
    out.failure = classify_connect_error(ec);
    co_return out;
  }
  stream.socket().set_option(tcp::no_delay(true), ec);
  if (!target_.tls) {
    stream.expires_never();
    out.connection = std::make_unique<upstream_connection>(std::move(stream));
    co_return out;
  }
  upstream_connection::tls_stream tls(std::move(stream), *target_.tls_context);
  // SNI, and the certificate must name the host we dialled.
  if (!SSL_set_tlsext_host_name(tls.native_handle(), target_.host.c_str())) {
    out.error = error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    out.failure = core::attempt_failure::tls_error;
    co_return out;
  }
  tls.set_verify_callback(asio::ssl::host_name_verification(target_.host));
  auto [hec] = co_await tls.async_handshake(asio::ssl::stream_base::client, use_nothrow);
  if (hec) {
    out.error = hec;
    out.failure = hec == beast::error::timeout ? core::attempt_failure::connect_timeout
                                               : core::attempt_failure::tls_error;
    co_return out;
  }
  beast::get_lowest_layer(tls).expires_never();
  out.connection = std::make_unique<upstream_connection>(std::move(tls));
  co_return out;
}

std::shared_ptr<asio::ssl::context> make_client_tls_context(bool verify,
                                                            const std::string& ca_file) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1);
  if (!verify) {
    context->set_verify_mode(asio::ssl::verify_none);
    return context;
  }
  context->set_verify_mode(asio::ssl::verify_peer);
  context->set_default_verify_paths();
  if (!ca_file.empty()) {
    context->load_verify_file(ca_file);
  }
  return context;
}

}  // namespace nines::net
