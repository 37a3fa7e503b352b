#include "net/client_transport.hpp"

#include "net/departure_watch.hpp"

namespace nines::net {
namespace {

class tcp_transport final : public client_transport {
 public:
  explicit tcp_transport(tcp::socket socket)
      : stream_(std::move(socket)), watch_(stream_.socket(), false) {
    error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
  }

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

  void watch_departure(std::function<void()> on_gone) override { watch_.start(std::move(on_gone)); }
  void stop_watching() override { watch_.stop(); }

  awaitable<void> end_sending(time_point) override {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return;
  }

  void abort(bool reset) override {
    error_code ignored;
    if (reset) {
      stream_.socket().set_option(asio::socket_base::linger(true, 0), ignored);
    }
    stream_.socket().close(ignored);
  }

 private:
  beast::tcp_stream stream_;
  departure_watch watch_;
};

}  // namespace

std::unique_ptr<client_transport> make_tcp_transport(tcp::socket socket) {
  return std::make_unique<tcp_transport>(std::move(socket));
}

}  // namespace nines::net
