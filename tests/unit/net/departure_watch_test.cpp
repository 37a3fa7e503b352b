// The departure watch (net/departure_watch.hpp) over real loopback sockets: a client that closes
// is noticed once the watch has started; a request answered before the start delay never looks
// at the socket at all; bytes from the client (a pipelined request) mean it is there.
//
// Each coroutine is a named lambda that outlives the io_context's run.

#include <gtest/gtest.h>

#include "net/departure_watch.hpp"
#include "net/spawn.hpp"
#include "loopback_pair.hpp"

namespace nines::net {
namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

using socket_pair = test::loopback_pair;

TEST(departure_watch, a_client_that_closes_is_noticed_after_the_start_delay) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  departure_watch watch(p.server, false);
  unsigned gone = 0;
  steady::duration took{};
  const auto started = steady::now();
  watch.start([&] {
    ++gone;
    took = steady::now() - started;
  });
  p.client.close();
  ioc.run();  // ends once the watch has fired and nothing else waits
  EXPECT_EQ(gone, 1u);
  EXPECT_GE(took, departure_watch::start_delay);
  EXPECT_EQ(departure_watch_starter::of(ioc.get_executor()).waiting(), 0u);
}

TEST(departure_watch, a_client_leaving_later_is_noticed_while_waiting) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  departure_watch watch(p.server, false);
  unsigned gone = 0;
  watch.start([&] { ++gone; });
  // Closed once the watch is surely waiting for readiness (two ticks past its start).
  asio::steady_timer later(ioc, departure_watch::start_delay + 2 * departure_watch_starter::tick);
  later.async_wait([&](const error_code&) { p.client.close(); });
  ioc.run();
  EXPECT_EQ(gone, 1u);
}

TEST(departure_watch, a_watch_stopped_before_its_start_never_looks) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  departure_watch watch(p.server, false);
  unsigned gone = 0;
  p.client.close();  // gone already: a watch that looked would say so
  watch.start([&] { ++gone; });
  EXPECT_EQ(departure_watch_starter::of(ioc.get_executor()).waiting(), 1u);
  watch.stop();  // the answer went out first
  EXPECT_EQ(departure_watch_starter::of(ioc.get_executor()).waiting(), 0u);
  ioc.run();
  EXPECT_EQ(gone, 0u);
}

TEST(departure_watch, bytes_from_the_client_mean_it_is_there) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  departure_watch watch(p.server, false);
  unsigned gone = 0;
  asio::write(p.client, asio::buffer("GET / HTTP/1.1\r\n\r\n", 18));
  p.client.shutdown(tcp::socket::shutdown_send);  // a pipelined request, then the end
  watch.start([&] { ++gone; });
  ioc.run();
  EXPECT_EQ(gone, 0u) << "a pipelined request is still answered";
}

TEST(departure_watch, over_tls_a_closed_sending_side_is_gone_even_with_bytes_before_it) {
  asio::io_context ioc{1};
  socket_pair p(ioc);
  departure_watch watch(p.server, true);
  unsigned gone = 0;
  asio::write(p.client, asio::buffer("\x15\x03\x03", 3));  // could be a close_notify alert
  p.client.shutdown(tcp::socket::shutdown_send);
  watch.start([&] { ++gone; });
  ioc.run();
  EXPECT_EQ(gone, 1u);
}

}  // namespace
}  // namespace nines::net
