// The shared limits' scripts (core/redis/redis_limit_layout.hpp) in a real Redis: a take counts
// what it grants in Redis's current second, never past the limit, all or nothing across both
// limits; extra allowance only from what is left; a give-back lowers the count (never below
// zero) and changes nothing once its second left the window; seconds older than the window do not
// count; the replicas' beats are counted.

#include <gtest/gtest.h>

#include "core/redis/redis_limit_layout.hpp"
#include "net/redis_connection.hpp"
#include "redis_client_steps.hpp"
#include "redis_harness.hpp"

namespace nines::test {
namespace {

namespace asio = boost::asio;
using core::redis_reply;

class limit_script : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = start_redis("127.78.34.1");
    std::string why;
    conn_ = run(io_, open(endpoint(redis_.host, redis_.port), &why));
    ASSERT_TRUE(conn_) << why;
  }
  redis_reply call_words(std::vector<std::string> words) {
    auto r = run(io_, call(conn_.get(), std::move(words)));
    EXPECT_TRUE(r);
    return r ? *r : redis_reply{};
  }
  std::optional<core::limit_grant> take(const core::limit_take& t) {
    const auto reply = call_words(core::limit_take_command(keys_, t));
    auto g = core::parse_limit_grant(reply, t);
    EXPECT_TRUE(g) << core::describe_redis_reply(reply);
    return g;
  }
  long long counted(const std::string& key) {
    const auto flat = call_words({"HVALS", key});
    long long sum = 0;
    for (const auto& v : flat.elements) {
      sum += std::stoll(v.text);
    }
    return sum;
  }
  long long redis_second() {
    const auto t = call_words({"TIME"});
    return std::stoll(t.elements.at(0).text);
  }
  static core::limit_take requests(std::uint64_t limit, std::uint64_t extra = 0) {
    core::limit_take t;
    t.request_limit = limit;
    t.requests = 1;
    t.extra_requests = extra;
    return t;
  }

  redis_node redis_;
  asio::io_context io_;
  std::unique_ptr<net::redis_connection> conn_;
  core::redis_limit_keys keys_ = core::redis_limit_keys_for("agents");
};

TEST_F(limit_script, takes_count_up_to_the_limit_and_no_further) {
  for (int i = 0; i < 10; ++i) {
    const auto g = take(requests(10));
    ASSERT_TRUE(g && g->admitted) << i;
    EXPECT_EQ(g->requests, 1U);
    EXPECT_EQ(g->requests_left, static_cast<std::uint64_t>(9 - i));
  }
  const auto refused = take(requests(10));
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->admitted);
  EXPECT_FALSE(refused->refused_for_tokens);
  EXPECT_GE(refused->reset_ms, 1U);
  EXPECT_LE(refused->reset_ms, 60000U);
  EXPECT_EQ(counted(keys_.requests), 10);
}

TEST_F(limit_script, extra_allowance_comes_only_from_what_is_left) {
  auto g = take(requests(10, 6));
  ASSERT_TRUE(g && g->admitted);
  EXPECT_EQ(g->requests, 7U);  // the need and all of the extra
  g = take(requests(10, 6));
  ASSERT_TRUE(g && g->admitted);
  EXPECT_EQ(g->requests, 3U);  // only what was left
  EXPECT_EQ(g->requests_left, 0U);
  EXPECT_FALSE(take(requests(10, 6))->admitted);
  EXPECT_EQ(counted(keys_.requests), 10);
}

TEST_F(limit_script, a_refusal_for_tokens_takes_no_request_either) {
  core::limit_take t = requests(100);
  t.token_limit = 1000;
  t.tokens = 600;
  ASSERT_TRUE(take(t)->admitted);
  const auto refused = take(t);
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->admitted);
  EXPECT_TRUE(refused->refused_for_tokens);
  EXPECT_EQ(refused->tokens_left, 400U);
  EXPECT_EQ(counted(keys_.requests), 1);  // all or nothing
  EXPECT_EQ(counted(keys_.tokens), 600);
}

TEST_F(limit_script, a_give_back_lowers_the_count_never_below_zero) {
  const auto g = take(requests(10, 4));
  ASSERT_TRUE(g && g->admitted);
  ASSERT_EQ(g->requests, 5U);
  auto r = call_words(core::limit_settle_command(keys_.requests, g->second, -4));
  EXPECT_EQ(r.integer, -4);
  EXPECT_EQ(counted(keys_.requests), 1);
  r = call_words(core::limit_settle_command(keys_.requests, g->second, -9));
  EXPECT_EQ(r.integer, -1);  // only what there was
  EXPECT_EQ(counted(keys_.requests), 0);
  // A token reservation that used more than it reserved adds the difference.
  r = call_words(core::limit_settle_command(keys_.tokens, g->second, 300));
  EXPECT_EQ(r.integer, 300);
  EXPECT_EQ(counted(keys_.tokens), 300);
}

TEST_F(limit_script, seconds_that_left_the_window_neither_count_nor_take_settlements) {
  const auto now = redis_second();
  // Counted 61 s ago: out of the window.
  call_words({"HSET", keys_.requests, std::to_string(now - 61), "10"});
  auto g = take(requests(10));
  ASSERT_TRUE(g && g->admitted);
  EXPECT_EQ(g->requests_left, 9U);
  EXPECT_EQ(call_words({"HEXISTS", keys_.requests, std::to_string(now - 61)}).integer, 0);
  // Counted 30 s ago: still in it.
  call_words({"HSET", keys_.requests, std::to_string(now - 30), "9"});
  EXPECT_FALSE(take(requests(10))->admitted);
  // A give-back for a second gone changes nothing.
  EXPECT_EQ(call_words(core::limit_settle_command(keys_.requests, now - 70, -5)).integer, 0);
  EXPECT_EQ(counted(keys_.requests), 10);
  // Both keys expire on their own a second after the window.
  const auto ttl = call_words({"PTTL", keys_.requests}).integer;
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 61000);
}

TEST_F(limit_script, every_replica_that_beats_is_counted) {
  auto r = call_words(core::replica_beat_command("gw-a", 5000));
  EXPECT_EQ(core::parse_live_replicas(r), 1U);
  call_words(core::replica_beat_command("gw-b", 5000));
  r = call_words(core::replica_beat_command("gw-a", 5000));
  EXPECT_EQ(core::parse_live_replicas(r), 2U);
  // A beat older than the window is dropped at the next one.
  call_words({"ZADD", std::string(core::redis_replicas_key()), "1", "gw-gone"});
  r = call_words(core::replica_beat_command("gw-c", 5000));
  EXPECT_EQ(core::parse_live_replicas(r), 3U);
}

}  // namespace
}  // namespace nines::test
