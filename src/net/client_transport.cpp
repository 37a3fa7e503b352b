#include "net/client_transport.hpp"

#include "net/deadline_sweep.hpp"
#include "net/departure_watch.hpp"

namespace nines::net {
namespace {

class tcp_transport final : public client_transport {
 public:
  explicit tcp_transport(tcp::socket socket)
      : socket_(std::move(socket)), reading_(socket_), writing_(socket_), watch_(socket_, false) {
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
  }

  awaitable<io_result> read_some(asio::mutable_buffer buffer, time_point deadline) override {
    reading_.arm(deadline);
    co_return reading_.finish(co_await socket_.async_read_some(buffer, use_nothrow));
  }

  awaitable<io_result> write(std::span<const asio::const_buffer> buffers,
                             std::chrono::milliseconds timeout) override {
    writing_.arm(std::chrono::steady_clock::now() + timeout);
    co_return writing_.finish(co_await asio::async_write(socket_, buffers, use_nothrow));
  }

  void watch_departure(std::function<void()> on_gone) override { watch_.start(std::move(on_gone)); }
  void stop_watching() override { watch_.stop(); }

  awaitable<void> end_sending(time_point) override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    co_return;
  }

  void abort(bool reset) override {
    error_code ignored;
    if (reset) {
      socket_.set_option(asio::socket_base::linger(true, 0), ignored);
    }
    socket_.close(ignored);
  }

 private:
  tcp::socket socket_;
  deadline reading_;
  deadline writing_;
  departure_watch watch_;
};

}  // namespace

std::unique_ptr<client_transport> make_tcp_transport(tcp::socket socket) {
  return std::make_unique<tcp_transport>(std::move(socket));
}

}  // namespace nines::net
