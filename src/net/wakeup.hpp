#pragma once
// A signal from one coroutine to another on the same io_context: the waiter suspends until
// notify() or a deadline. One waiter at a time (a new wait() re-arms the timer, which would wake a
// previous waiter). Nothing is remembered: a waiter checks its condition before waiting, which is
// race-free because coroutines of one io_context never run at the same time.

#include <chrono>

#include "net/asio.hpp"

namespace nines::net {

class wakeup {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit wakeup(const asio::any_io_executor& executor) : timer_(executor) {}

  // True when woken by notify() (or cancelled), false when the deadline passed.
  awaitable<bool> wait(time_point deadline = time_point::max()) {
    timer_.expires_at(deadline);
    auto [ec] = co_await timer_.async_wait(use_nothrow);
    co_return ec == asio::error::operation_aborted;
  }

  void notify() { timer_.cancel(); }

 private:
  asio::steady_timer timer_;
};

}  // namespace nines::net
