#pragma once
// Keep-alive connections from one worker to one upstream. A worker owns one pool per upstream and
// uses it from its own thread only; pools are never shared between workers.
//
// take_idle() hands out the most recently used idle connection that is still fresh (LIFO keeps a
// few connections hot); connect() opens a new one (TCP, then TLS with chain and host name checks
// when the upstream is https) within the connect timeout. give_back() keeps a connection for
// reuse while there is room, else closes it. A pooled connection may have been closed by the server
// meanwhile: the caller retries such a failure once on a fresh connection.

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <chrono>
#include <memory>
#include <variant>
#include <vector>

#include "core/retry_policy.hpp"
#include "net/asio.hpp"

namespace nines::net {

class upstream_connection {
 public:
  using plain_stream = beast::tcp_stream;
  using tls_stream = beast::ssl_stream<beast::tcp_stream>;

  explicit upstream_connection(plain_stream stream) : stream_(std::move(stream)) {}
  explicit upstream_connection(tls_stream stream) : stream_(std::move(stream)) {}

  beast::tcp_stream& tcp() {
    return std::visit([](auto& s) -> beast::tcp_stream& { return beast::get_lowest_layer(s); },
                      stream_);
  }
  beast::flat_buffer& buffer() { return buffer_; }

  // Calls f(stream) with the concrete stream type; f returns the same type for both.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), stream_);
  }

  bool reused() const { return reused_; }
  void mark_reused() { reused_ = true; }
  std::chrono::steady_clock::time_point idle_since() const { return idle_since_; }
  void set_idle_since(std::chrono::steady_clock::time_point t) { idle_since_ = t; }

  void close();

 private:
  std::variant<plain_stream, tls_stream> stream_;
  beast::flat_buffer buffer_;
  bool reused_ = false;
  std::chrono::steady_clock::time_point idle_since_{};
};

struct upstream_target {
  std::string host;
  std::uint16_t port = 0;
  bool tls = false;
  std::shared_ptr<asio::ssl::context> tls_context;  // set when tls
};

struct connect_outcome {
  std::unique_ptr<upstream_connection> connection;
  core::attempt_failure failure = core::attempt_failure::none;
  error_code error;
};

class upstream_pool {
 public:
  upstream_pool(upstream_target target, std::size_t max_idle, std::chrono::milliseconds idle_timeout)
      : target_(std::move(target)), max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  std::unique_ptr<upstream_connection> take_idle(std::chrono::steady_clock::time_point now);
  awaitable<connect_outcome> connect(std::chrono::milliseconds timeout);
  void give_back(std::unique_ptr<upstream_connection> connection,
                 std::chrono::steady_clock::time_point now);

  std::size_t idle_count() const { return idle_.size(); }
  const upstream_target& target() const { return target_; }

 private:
  upstream_target target_;
  std::size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
  std::vector<std::unique_ptr<upstream_connection>> idle_;
};

// Builds the TLS client context for an upstream: TLS 1.2+, peer verification against the system
// store (plus `ca_file` when given) unless `verify` is false. Throws on a bad ca_file (startup).
std::shared_ptr<asio::ssl::context> make_client_tls_context(bool verify, const std::string& ca_file);

}  // namespace nines::net
