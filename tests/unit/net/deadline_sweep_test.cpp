// The deadline sweep (net/deadline_sweep.hpp): one timer per io_context enforcing the deadline of
// every read and write, over real loopback sockets. What matters: an operation past its deadline
// ends with a timeout and its socket closed; one that completes in time is untouched; a busy
// connection whose deadlines keep moving later never touches the timer; and an io_context with
// nothing else to do ends (the sweep's timer does not keep it alive).
//
// Each coroutine is a named lambda that outlives the io_context's run: a temporary lambda's
// captures would be gone when its coroutine resumes.

#include <gtest/gtest.h>

#include "net/deadline_sweep.hpp"
#include "net/spawn.hpp"
#include "loopback_pair.hpp"

namespace nines::net {
namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

using socket_pair = test::loopback_pair;

awaitable<io_result> guarded_read(tcp::socket& s, deadline& d, steady::time_point due) {
  char byte[64];
  d.arm(due);
  co_return d.finish(co_await s.async_read_some(asio::buffer(byte), use_nothrow));
}

TEST(deadline_sweep, a_read_past_its_deadline_times_out_and_closes_its_socket) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  deadline d(p.server);
  error_code got;
  const auto started = steady::now();
  auto task1 = [&]() -> awaitable<void> {
    auto [ec, n] = co_await guarded_read(p.server, d, steady::now() + 30ms);
    got = ec;
  };
  spawn(ioc.get_executor(), task1(), "test");
  ioc.run();
  EXPECT_EQ(got, beast::error::timeout);
  EXPECT_GE(steady::now() - started, 30ms);
  EXPECT_FALSE(p.server.is_open());
  EXPECT_EQ(deadline_sweep::of(ioc.get_executor()).armed(), 0u);
}

TEST(deadline_sweep, a_deadline_already_past_ends_the_operation_at_once) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  deadline d(p.server);
  error_code got;
  auto task2 = [&]() -> awaitable<void> {
    auto [ec, n] = co_await guarded_read(p.server, d, steady::now() - 1s);
    got = ec;
  };
  spawn(ioc.get_executor(), task2(), "test");
  ioc.run();
  EXPECT_EQ(got, beast::error::timeout);
}

TEST(deadline_sweep, a_read_that_completes_in_time_is_untouched_and_the_context_ends) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  deadline d(p.server);
  error_code got = asio::error::would_block;
  std::size_t n_got = 0;
  auto task3 = [&]() -> awaitable<void> {
    auto [ec, n] = co_await guarded_read(p.server, d, steady::now() + 1h);
    got = ec;
    n_got = n;
  };
  spawn(ioc.get_executor(), task3(), "test");
  asio::write(p.client, asio::buffer("hello", 5));
  ioc.run();  // returns: the hour-long deadline keeps nothing alive once the read completed
  EXPECT_FALSE(got) << got.message();
  EXPECT_EQ(n_got, 5u);
  EXPECT_TRUE(p.server.is_open());
  EXPECT_FALSE(d.fired());
}

TEST(deadline_sweep, a_busy_connection_whose_deadlines_move_later_never_touches_the_timer) {
  asio::io_context ioc{1};
  socket_pair busy(ioc);
  socket_pair idle(ioc);
  deadline busy_reads(busy.server);
  deadline idle_read(idle.server);
  auto& sweep = deadline_sweep::of(ioc.get_executor());
  unsigned completed = 0;
  std::uint64_t sets_before = 0;
  std::uint64_t sets_after = 0;
  // An idle keep-alive connection waits with an earlier deadline: the timer is set for it (this
  // task runs first, up to its read).
  auto idle_task = [&]() -> awaitable<void> {
    co_await guarded_read(idle.server, idle_read, steady::now() + 10min);
  };
  spawn(ioc.get_executor(), idle_task(), "idle");
  auto task4 = [&]() -> awaitable<void> {
    sets_before = sweep.timer_sets();
    for (int i = 0; i < 1000; ++i) {
      asio::write(busy.client, asio::buffer("x", 1));
      auto [ec, n] = co_await guarded_read(busy.server, busy_reads, steady::now() + 20min);
      if (!ec) {
        ++completed;
      }
    }
    sets_after = sweep.timer_sets();
    idle.client.close();  // the idle read ends: nothing is left
  };
  spawn(ioc.get_executor(), task4(), "test");
  ioc.run();
  EXPECT_EQ(completed, 1000u);
  EXPECT_EQ(sets_before, 1u);
  EXPECT_EQ(sets_after, sets_before) << "no timer operation for 1000 reads re-armed later";
}

TEST(deadline_sweep, each_deadline_fires_at_its_own_time) {
  asio::io_context ioc{1};
  socket_pair early(ioc);
  socket_pair late(ioc);
  deadline early_d(early.server);
  deadline late_d(late.server);
  std::vector<std::string> order;
  const auto start = steady::now();
  steady::duration late_took{};
  auto task5 = [&]() -> awaitable<void> {
    auto [ec, n] = co_await guarded_read(late.server, late_d, start + 1s);
    order.push_back(ec == beast::error::timeout ? "late timed out" : ec.message());
    late_took = steady::now() - start;
  };
  spawn(ioc.get_executor(), task5(), "late");
  auto task6 = [&]() -> awaitable<void> {
    auto [ec, n] = co_await guarded_read(early.server, early_d, start + 20ms);
    order.push_back(ec == beast::error::timeout ? "early timed out" : ec.message());
    EXPECT_TRUE(late.server.is_open()) << "the later deadline (a second after) is not due yet";
  };
  spawn(ioc.get_executor(), task6(), "early");
  ioc.run();
  EXPECT_EQ(order, (std::vector<std::string>{"early timed out", "late timed out"}));
  EXPECT_GE(late_took, 1s);
}

TEST(deadline_sweep, a_deadline_armed_earlier_than_the_timer_resets_it) {
  asio::io_context ioc{1};
  socket_pair far(ioc);
  socket_pair near(ioc);
  deadline far_d(far.server);
  deadline near_d(near.server);
  error_code near_got;
  auto task7 = [&]() -> awaitable<void> {
    co_await guarded_read(far.server, far_d, steady::now() + 1h);
  };
  spawn(ioc.get_executor(), task7(), "far");
  auto task8 = [&]() -> awaitable<void> {
    auto [ec, n] = co_await guarded_read(near.server, near_d, steady::now() + 20ms);
    near_got = ec;
    far.client.close();  // ends the far read (end of stream), so the context can finish
  };
  spawn(ioc.get_executor(), task8(), "near");
  ioc.run();
  EXPECT_EQ(near_got, beast::error::timeout) << "not left waiting for the hour-long timer";
  EXPECT_FALSE(far_d.fired());
}

}  // namespace
}  // namespace nines::net
