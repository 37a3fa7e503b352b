// nines's Redis client (net/redis_connection, net/redis_sentinel) against Debian's redis-server
// and redis-sentinel on loopback: pipelined appends read back in order, AUTH refused without the
// password in the error, a server that says nothing or too much, a server killed under a
// connection, and the primary found through three Sentinels before and after it is killed.

#include "net/redis_connection.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <thread>

#include "net/redis_sentinel.hpp"
#include "redis_client_steps.hpp"
#include "redis_harness.hpp"

namespace nines::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using core::redis_reply;
using net::redis_connection;
using net::redis_endpoint;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

TEST(redis_connection, a_pipeline_of_appends_is_written_and_read_back_in_order) {
  const std::string secret = "s3cret-never-shown";
  auto redis = start_redis("127.78.1.1", {"--requirepass", secret});
  asio::io_context io;
  redis_endpoint at{redis.host, redis.port, 0, secret};

  std::string why;
  auto c = run(io, open(at, &why));
  ASSERT_TRUE(c) << why;
  // 1,000 appends in one write, their entry ids the events' sequence numbers.
  std::string wire;
  for (int i = 1; i <= 1000; ++i) {
    const auto id = std::to_string(i) + "-1";
    const auto event = "data: event " + std::to_string(i) + "\n\n";
    ASSERT_TRUE(core::append_redis_command(wire, {"XADD", "{s:t}:events", id, "e", event}));
  }
  const auto replies = run(io, exec(c.get(), wire, 1000));
  ASSERT_TRUE(replies) << c->problem();
  ASSERT_EQ(replies->size(), 1000u);
  for (int i = 1; i <= 1000; ++i) {
    EXPECT_EQ((*replies)[i - 1].text, std::to_string(i) + "-1");
  }
  // The same id again is refused by Redis (an append is idempotent by its id): an error reply,
  // and the connection goes on.
  const auto again = run(io, call(c.get(), {"XADD", "{s:t}:events", "500-1", "e", "x"}));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->is_error());
  EXPECT_NE(again->text.find("equal or smaller"), std::string::npos) << again->text;
  const auto back = run(io, call(c.get(), {"XRANGE", "{s:t}:events", "-", "+"}));
  ASSERT_TRUE(back) << c->problem();
  ASSERT_EQ(back->elements.size(), 1000u);
  EXPECT_EQ(back->elements[0].elements.at(0).text, "1-1");
  EXPECT_EQ(back->elements[999].elements.at(1).elements.at(1).text, "data: event 1000\n\n");

  // A wrong password: refused, and the error does not carry what was sent.
  at.password = "wrong-" + secret;
  EXPECT_FALSE(run(io, open(at, &why)));
  EXPECT_NE(why.find("AUTH refused"), std::string::npos) << why;
  EXPECT_EQ(why.find(secret), std::string::npos) << why;
  // None: connected, and every command answered NOAUTH.
  at.password.clear();
  auto anonymous = run(io, open(at, &why));
  ASSERT_TRUE(anonymous) << why;
  const auto ping = run(io, call(anonymous.get(), {"PING"}));
  ASSERT_TRUE(ping);
  EXPECT_TRUE(ping->is_error());
  EXPECT_NE(ping->text.find("NOAUTH"), std::string::npos) << ping->text;
  // And a db other than 0 is selected.
  at = redis_endpoint{redis.host, redis.port, 3, secret};
  auto third = run(io, open(at, &why));
  ASSERT_TRUE(third) << why;
  EXPECT_EQ(run(io, call(third.get(), {"EXISTS", "{s:t}:events"}))->integer, 0);
}

TEST(redis_connection, a_server_that_says_nothing_is_given_up_at_the_deadline) {
  asio::io_context io;
  // Listens, never accepts: the kernel completes the handshake, nobody ever answers.
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::string why;
  auto c = run(io, open(endpoint("127.0.0.1", silent.local_endpoint().port()), &why));
  ASSERT_TRUE(c) << why;
  const auto r = run(io, call(c.get(), {"PING"}, milliseconds(300)));
  EXPECT_FALSE(r);
  EXPECT_TRUE(c->timed_out());
  EXPECT_EQ(c->problem(), "no reply in time");
  EXPECT_FALSE(c->usable());
  // Closed for good: the next command is not sent on it.
  EXPECT_FALSE(run(io, call(c.get(), {"PING"})));
}

TEST(redis_connection, a_server_that_sends_too_much_is_refused_within_the_bound) {
  asio::io_context io;
  tcp::acceptor hostile(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = hostile.local_endpoint().port();
  std::thread server([&] {
    boost::system::error_code ec;
    tcp::socket s(hostile.get_executor());
    hostile.accept(s, ec);
    char sink[256];
    s.read_some(asio::buffer(sink), ec);  // the PING
    // A bulk string of 93 GB announced, and the bytes start coming.
    const std::string head = "$99999999999\r\n";
    asio::write(s, asio::buffer(head), ec);
    const std::string filler(64 * 1024, 'x');
    for (int i = 0; i < 64 && !ec; ++i) {
      asio::write(s, asio::buffer(filler), ec);
    }
  });
  std::string why;
  auto c = run(io, open(endpoint("127.0.0.1", port), &why, {16 * 1024, 64}));
  ASSERT_TRUE(c) << why;
  EXPECT_FALSE(run(io, call(c.get(), {"PING"})));
  EXPECT_NE(c->problem().find("larger than the bound"), std::string::npos) << c->problem();
  EXPECT_FALSE(c->timed_out());
  c.reset();  // closes: the server's writes end
  server.join();
}

TEST(redis_connection, a_server_killed_under_a_connection_breaks_it_and_says_so) {
  auto redis = start_redis("127.78.1.2");
  asio::io_context io;
  std::string why;
  auto c = run(io, open(endpoint(redis.host, redis.port), &why));
  ASSERT_TRUE(c) << why;
  ASSERT_TRUE(run(io, call(c.get(), {"PING"}))->is_status("PONG"));
  redis.proc->signal(SIGKILL);
  ASSERT_TRUE(redis.proc->wait_exit());
  EXPECT_FALSE(run(io, call(c.get(), {"PING"})));
  EXPECT_FALSE(c->usable());
  EXPECT_FALSE(c->problem().empty());
  EXPECT_FALSE(c->timed_out());
  // Nothing listens there now: the connect is refused and says where.
  EXPECT_FALSE(run(io, open(endpoint(redis.host, redis.port), &why)));
  EXPECT_NE(why.find("127.78.1.2:6379"), std::string::npos) << why;
}

asio::awaitable<net::redis_primary> find(std::vector<redis_endpoint> sentinels) {
  // Named first: GCC 12 mishandles temporaries inside a co_await expression.
  std::string name = "journal";
  redis_endpoint primary;
  co_return co_await net::find_redis_primary(std::move(sentinels), std::move(name),
                                             std::move(primary),
                                             steady::now() + milliseconds(3000));
}

TEST(redis_sentinel, the_primary_is_found_through_sentinels_and_again_after_it_is_killed) {
  auto t = start_redis_topology(2, "journal");
  asio::io_context io;
  std::vector<redis_endpoint> sentinels;
  // The first Sentinel listed is not running: passed over.
  sentinels.push_back(endpoint("127.78.2.10", 26379));
  for (const auto& s : t.sentinels) {
    sentinels.push_back(endpoint(s.host, s.port));
  }
  auto found = run(io, find(sentinels));
  ASSERT_TRUE(found.conn) << found.why;
  EXPECT_EQ(found.at.host, t.primary.host);
  std::string wire;
  core::append_redis_command(wire, {"XADD", "{s:f}:events", "1-1", "e", "before"});
  ASSERT_TRUE(run(io, exec(found.conn.get(), wire, 1)));

  // The primary dies: the Sentinels promote a replica, and it is found there, ROLE master, with
  // what was written before (replicated) and writable.
  t.primary.proc->signal(SIGKILL);
  ASSERT_TRUE(t.primary.proc->wait_exit());
  std::string last_why;
  const bool moved = eventually(
      [&] {
        auto again = run(io, find(sentinels));
        last_why = again.why;
        if (!again.conn || again.at.host == t.primary.host) {
          return false;
        }
        found = std::move(again);
        return true;
      },
      milliseconds(60000), milliseconds(250));
  ASSERT_TRUE(moved) << last_why;
  EXPECT_TRUE(found.at.host == t.replicas[0].host || found.at.host == t.replicas[1].host);
  const auto kept = run(io, call(found.conn.get(), {"XRANGE", "{s:f}:events", "-", "+"}));
  ASSERT_TRUE(kept);
  ASSERT_EQ(kept->elements.size(), 1u);
  const auto more = run(io, call(found.conn.get(), {"XADD", "{s:f}:events", "2-1", "e", "after"}));
  ASSERT_TRUE(more);
  EXPECT_EQ(more->text, "2-1");

  // No Sentinel answering: not found, and each one's problem said.
  const auto none = run(io, find({endpoint("127.78.2.10", 26379), endpoint("127.78.2.9", 26379)}));
  EXPECT_FALSE(none.conn);
  EXPECT_NE(none.why.find("Sentinel 127.78.2.10:26379"), std::string::npos) << none.why;
  EXPECT_NE(none.why.find("Sentinel 127.78.2.9:26379"), std::string::npos) << none.why;
}

}  // namespace
}  // namespace nines::test
