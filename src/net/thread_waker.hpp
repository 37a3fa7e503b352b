#pragma once
// A coroutine's wake-up that any thread may trigger (net::wakeup is for one thread): a notifier
// posts to the waiter's own executor, where the waiter resumes. A notification that arrives while
// the waiter is busy elsewhere (awaiting a write to its client, say) is remembered for its next
// wait: callers that are notified once per change (the journal's waiters) would otherwise sleep
// through the last change, a stream that has already ended.
//
// Owned through a shared_ptr; a notifier holds it weakly, so a waiter that is gone is not woken.
// `wait` and `pending` belong to the waiter's thread.

#include <chrono>
#include <functional>
#include <memory>

#include <boost/asio/post.hpp>

#include "net/wakeup.hpp"

namespace nines::net {

struct thread_waker {
  explicit thread_waker(const asio::any_io_executor& ex) : executor(ex), wake(ex) {}
  asio::any_io_executor executor;
  wakeup wake;
  bool pending = false;  // notified since the last wait

  // A callable for any thread.
  static std::function<void()> notifier(const std::shared_ptr<thread_waker>& w) {
    return [weak = std::weak_ptr<thread_waker>(w)] {
      if (auto alive = weak.lock()) {
        asio::post(alive->executor, [alive] {
          alive->pending = true;
          alive->wake.notify();
        });
      }
    };
  }

  // True when notified (now or since the last wait), false when the deadline passed.
  awaitable<bool> wait(std::chrono::steady_clock::time_point deadline) {
    if (!pending) {
      co_await wake.wait(deadline);
    }
    const bool notified = pending;
    pending = false;
    co_return notified;
  }
};

}  // namespace nines::net
