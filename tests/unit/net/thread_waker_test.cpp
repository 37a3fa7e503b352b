// net::thread_waker: a notification never gets lost between two waits. (The journal's readers
// are notified once per change; before this, a notification that arrived while a reader was
// writing to its client was dropped, and the reader slept through the end of its stream until
// the request deadline — seen as a test that hung under load.)

#include "net/thread_waker.hpp"

#include <gtest/gtest.h>

#include "net/spawn.hpp"

namespace nines::net {
namespace {

using steady = std::chrono::steady_clock;

TEST(thread_waker, a_notification_before_the_wait_is_not_lost) {
  asio::io_context ioc;
  auto w = std::make_shared<thread_waker>(ioc.get_executor());
  const auto notify = thread_waker::notifier(w);
  std::optional<bool> woken;
  spawn(ioc.get_executor(),
        [](std::shared_ptr<thread_waker> w, std::function<void()> notify,
           std::optional<bool>& woken) -> awaitable<void> {
          notify();  // e.g. from another thread, while this coroutine is still busy
          co_await sleep_for(std::chrono::milliseconds(0));  // busy: the notification runs now
          woken = co_await w->wait(steady::now() + std::chrono::hours(1));
        }(w, notify, woken),
        "test");
  ioc.run_for(std::chrono::seconds(10));  // a bound: returns at once when done
  ASSERT_TRUE(woken.has_value()) << "the notification was lost: the wait ran into its deadline";
  EXPECT_TRUE(*woken);
}

TEST(thread_waker, a_deadline_without_a_notification_says_so_and_none_is_left_over) {
  asio::io_context ioc;
  auto w = std::make_shared<thread_waker>(ioc.get_executor());
  std::vector<bool> results;
  spawn(ioc.get_executor(),
        [](std::shared_ptr<thread_waker> w, std::vector<bool>& results) -> awaitable<void> {
          results.push_back(co_await w->wait(steady::now()));
          thread_waker::notifier(w)();
          results.push_back(co_await w->wait(steady::now() + std::chrono::hours(1)));
          results.push_back(co_await w->wait(steady::now()));  // the one notification was used
        }(w, results),
        "test");
  ioc.run_for(std::chrono::seconds(10));
  EXPECT_EQ(results, (std::vector<bool>{false, true, false}));
}

}  // namespace
}  // namespace nines::net
