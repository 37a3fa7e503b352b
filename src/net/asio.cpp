#include "net/asio.hpp"

#include <boost/asio/this_coro.hpp>

namespace nines::net {

awaitable<bool> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  auto [ec] = co_await timer.async_wait(use_nothrow);
  co_return !ec;
}

}  // namespace nines::net
