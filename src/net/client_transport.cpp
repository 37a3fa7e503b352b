#include "net/client_transport.hpp"

#include <cerrno>
#include <sys/socket.h>

namespace nines::net {
namespace {

class tcp_transport final : public client_transport {
 public:
  explicit tcp_transport(tcp::socket socket) : stream_(std::move(socket)) {
    error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
  }
  ~tcp_transport() override { stop_watching(); }

  awaitable<io_result> read_some(asio::mutable_buffer buffer, time_point deadline) override {
    stream_.expires_at(deadline);
    auto [ec, n] = co_await stream_.async_read_some(buffer, use_nothrow);
    co_return io_result{ec, n};
  }

  awaitable<io_result> write(std::span<const asio::const_buffer> buffers,
                             std::chrono::milliseconds timeout) override {
    stream_.expires_after(timeout);
    auto [ec, n] = co_await asio::async_write(stream_, buffers, use_nothrow);
    co_return io_result{ec, n};
  }

  void watch_departure(std::function<void()> on_gone) override {
    stop_watching();
    watch_ = std::make_shared<watch>();
    watch_->on_gone = std::move(on_gone);
    arm(watch_);
  }

  void stop_watching() override {
    if (watch_ && watch_->active) {
      watch_->active = false;
      error_code ignored;
      stream_.socket().cancel(ignored);  // the pending wait ends; nothing else is pending now
    }
    watch_.reset();
  }

  void shutdown_send() override {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  void abort(bool reset) override {
    error_code ignored;
    if (reset) {
      stream_.socket().set_option(asio::socket_base::linger(true, 0), ignored);
    }
    stream_.socket().close(ignored);
  }

 private:
  struct watch {
    bool active = true;
    std::function<void()> on_gone;
  };

  void gone(const std::shared_ptr<watch>& w) {
    w->active = false;
    auto f = std::move(w->on_gone);
    f();
  }

  // Looks without reading: an end of stream or an error means the client left; bytes mean it is
  // alive (and they stay for the next request); nothing yet means wait for readiness.
  void arm(const std::shared_ptr<watch>& w) {
    char byte;
    const auto n = ::recv(stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      gone(w);
      return;
    }
    if (n > 0) {
      w->active = false;
      return;
    }
    stream_.socket().async_wait(tcp::socket::wait_read, [this, w](const error_code& ec) {
      if (!w->active) {
        return;  // stopped: `this` may be gone, touch nothing
      }
      if (ec) {
        gone(w);  // the socket was closed under the watch (a write timed out, say)
        return;
      }
      arm(w);
    });
  }

  beast::tcp_stream stream_;
  std::shared_ptr<watch> watch_;
};

}  // namespace

std::unique_ptr<client_transport> make_tcp_transport(tcp::socket socket) {
  return std::make_unique<tcp_transport>(std::move(socket));
}

}  // namespace nines::net
