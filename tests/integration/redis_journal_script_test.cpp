// The shared journal's layout in a real Redis (core/redis/redis_journal_layout.hpp): the append
// script's rules (owner fencing, idempotent re-sends, a gap made explicit, nothing after the end,
// expiry) and reading an answer back as a reconnect does.

#include <gtest/gtest.h>

#include "core/redis/redis_journal_layout.hpp"
#include "net/redis_connection.hpp"
#include "redis_client_steps.hpp"
#include "redis_harness.hpp"

namespace nines::test {
namespace {

namespace asio = boost::asio;
using core::redis_reply;
using net::redis_connection;
using net::redis_endpoint;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

class journal_script : public ::testing::Test {
 protected:
  void SetUp() override {
    redis_ = start_redis("127.78.24.1");
    redis_endpoint at;
    at.host = redis_.host;
    at.port = redis_.port;
    std::string why;
    conn_ = run(io_, open(at, &why));
    ASSERT_TRUE(conn_) << why;
    auto sha =
        run(io_, call(conn_.get(), {"SCRIPT", "LOAD", std::string(core::journal_append_script())}));
    ASSERT_TRUE(sha && sha->type == redis_reply::kind::string) << (sha ? sha->text : "");
    sha_ = sha->text;
  }

  // One write by `owner`; its replies (one per script call).
  std::vector<redis_reply> write(const std::string& owner, const core::redis_journal_write& w,
                                 std::size_t max_events = 256, std::uint64_t ttl_ms = 60000,
                                 std::uint64_t lease_ms = 0) {
    std::string wire;
    const auto n =
        core::append_journal_write(wire, keys_, owner, sha_, ttl_ms, lease_ms, w, max_events);
    auto replies = run(io_, exec(conn_.get(), wire, n));
    EXPECT_TRUE(replies);
    return replies ? *replies : std::vector<redis_reply>{};
  }
  core::redis_journal_read read_after(std::uint64_t after) {
    auto r = run(io_, call(conn_.get(), core::journal_follow_command(keys_, after, 1000, {})));
    EXPECT_TRUE(r);
    return r ? core::parse_journal_follow(*r, after) : core::redis_journal_read{};
  }

  static core::redis_journal_write events(std::uint64_t first, std::uint64_t last) {
    core::redis_journal_write w;
    w.first_seq = first;
    for (auto seq = first; seq <= last; ++seq) {
      w.events.push_back("id: s:" + std::to_string(seq) + "\ndata: " + std::to_string(seq) +
                         "\n\n");
    }
    return w;
  }
  static std::string expected(std::uint64_t first, std::uint64_t last) {
    std::string out;
    for (const auto& e : events(first, last).events) {
      out += e;
    }
    return out;
  }

  redis_node redis_;
  asio::io_context io_;
  std::unique_ptr<redis_connection> conn_;
  std::string sha_;
  core::redis_journal_keys keys_ = core::redis_journal_keys_for("s", "digest-1");
};

TEST_F(journal_script, events_are_read_back_in_order_and_a_resend_adds_nothing) {
  core::journal_head head{200, {{"content-type", "text/event-stream"}}, true};
  auto first = events(1, 3);
  first.head = core::encode_journal_head(head);
  ASSERT_EQ(write("gw-a", first).at(0).integer, 3);
  // The pipeline sent again after a broken connection, overlapping what is there: 4 and 5 only.
  ASSERT_EQ(write("gw-a", events(2, 5)).at(0).integer, 5);
  // Split into calls of two events each: the same result.
  const auto split = write("gw-a", events(1, 7), 2);
  ASSERT_EQ(split.size(), 4U);
  EXPECT_EQ(split.back().integer, 7);
  const auto got = read_after(0);
  EXPECT_FALSE(got.malformed);
  EXPECT_FALSE(got.incomplete);
  EXPECT_EQ(got.events, expected(1, 7));
  EXPECT_EQ(got.last, 7U);
  EXPECT_FALSE(got.end);
  // From the middle, as a reconnect with Last-Event-ID s:4 reads it.
  EXPECT_EQ(read_after(4).events, expected(5, 7));

  auto meta = run(io_, call(conn_.get(), core::journal_meta_command(keys_)));
  ASSERT_TRUE(meta);
  const auto m = core::parse_journal_meta(*meta);
  EXPECT_TRUE(m.present);
  EXPECT_FALSE(m.broken);
  ASSERT_TRUE(m.head);
  EXPECT_EQ(m.head->status, 200U);
  EXPECT_EQ(m.head->fields, head.fields);
}

TEST_F(journal_script, another_owner_is_fenced_off) {
  ASSERT_EQ(write("gw-a", events(1, 2)).at(0).integer, 2);
  const auto refused = write("gw-b", events(3, 4));
  ASSERT_EQ(refused.size(), 1U);
  EXPECT_TRUE(refused[0].is_error());
  EXPECT_EQ(refused[0].text.rfind("FENCED", 0), 0U) << refused[0].text;
  EXPECT_EQ(read_after(0).events, expected(1, 2));
}

TEST_F(journal_script, the_end_comes_once_and_nothing_after_it) {
  auto w = events(1, 2);
  core::journal_summary summary;
  summary.outcome = "ok";
  summary.attempts = 2;
  summary.upstreams = {"u0", "u1"};
  summary.served_by = "u1";
  w.end = core::encode_journal_end(summary, "");
  ASSERT_EQ(write("gw-a", w).at(0).integer, 2);
  ASSERT_EQ(write("gw-a", w).at(0).integer, 2);             // the same again: one end
  ASSERT_EQ(write("gw-a", events(3, 3)).at(0).integer, 2);  // after the end: ignored
  const auto got = read_after(0);
  EXPECT_EQ(got.events, expected(1, 2));
  ASSERT_TRUE(got.end);
  EXPECT_EQ(got.end->summary.served_by, "u1");
  EXPECT_EQ(got.end->summary.upstreams, summary.upstreams);
  EXPECT_EQ(got.end->summary.attempts, 2U);
  // Nothing more after the end entry.
  auto after_end = run(io_, call(conn_.get(), core::journal_follow_command(keys_, 3, 10, {})));
  ASSERT_TRUE(after_end);
  EXPECT_EQ(after_end->type, redis_reply::kind::nil);
}

TEST_F(journal_script, a_gap_is_made_explicit_and_ends_the_copy) {
  ASSERT_EQ(write("gw-a", events(1, 3)).at(0).integer, 3);
  // Events 4-5 never got there (a queue that overflowed): 6 makes the copy incomplete.
  ASSERT_EQ(write("gw-a", events(6, 8)).at(0).integer, 3);
  const auto got = read_after(0);
  EXPECT_EQ(got.events, expected(1, 3));
  EXPECT_TRUE(got.incomplete);
  auto meta = run(io_, call(conn_.get(), core::journal_meta_command(keys_)));
  ASSERT_TRUE(meta);
  EXPECT_TRUE(core::parse_journal_meta(*meta).broken);
  // The writer's own mark (the queue dropped events): the same.
  keys_ = core::redis_journal_keys_for("t", "digest-1");
  ASSERT_EQ(write("gw-a", events(1, 1)).at(0).integer, 1);
  core::redis_journal_write mark;
  mark.first_seq = 5;
  mark.broken = true;
  write("gw-a", mark);
  EXPECT_TRUE(read_after(1).incomplete);
}

TEST_F(journal_script, both_keys_expire_with_the_ttl) {
  write("gw-a", events(1, 1), 256, 50000);
  for (const auto& key : {keys_.meta, keys_.events}) {
    auto ttl = run(io_, call(conn_.get(), {"PTTL", key}));
    ASSERT_TRUE(ttl);
    EXPECT_GT(ttl->integer, 40000);
    EXPECT_LE(ttl->integer, 50000);
  }
}

core::journal_takeover take_over(const core::redis_journal_keys& keys, asio::io_context& io,
                                 redis_connection* conn, const std::string& taker) {
  auto r = run(io, call(conn, core::journal_takeover_command(keys, taker, 60000, 60000)));
  EXPECT_TRUE(r);
  return r ? core::parse_journal_takeover(*r) : core::journal_takeover{};
}

TEST_F(journal_script, a_running_answer_is_taken_over_only_once_its_lease_ran_out) {
  using kind = core::journal_takeover::kind;
  EXPECT_EQ(take_over(keys_, io_, conn_.get(), "gw-b").type, kind::absent);
  // A writer without leases (lease 0): never taken over.
  ASSERT_EQ(write("gw-a", events(1, 2)).at(0).integer, 2);
  EXPECT_EQ(take_over(keys_, io_, conn_.get(), "gw-b").type, kind::held);
  // With a lease that runs: held.
  ASSERT_EQ(write("gw-a", events(3, 3), 256, 60000, 60000).at(0).integer, 3);
  EXPECT_EQ(take_over(keys_, io_, conn_.get(), "gw-b").type, kind::held);
  // The lease ran out (set into the past, as a dead owner's would be): the first taker gets it,
  // under the next epoch, after the last event; a second taker is held off by the new lease.
  ASSERT_TRUE(run(io_, call(conn_.get(), {"HSET", keys_.meta, "lease", "1"})));
  const auto taken = take_over(keys_, io_, conn_.get(), "gw-b");
  ASSERT_EQ(taken.type, kind::ours);
  EXPECT_EQ(taken.owner, "gw-b/1");
  EXPECT_EQ(taken.last, 3U);
  EXPECT_EQ(take_over(keys_, io_, conn_.get(), "gw-c").type, kind::held);
  // The old owner wakes: fenced off. The taker writes on from event 4.
  const auto late = write("gw-a", events(4, 4), 256, 60000, 60000);
  ASSERT_EQ(late.size(), 1U);
  EXPECT_EQ(late[0].text.rfind("FENCED", 0), 0U) << late[0].text;
  ASSERT_EQ(write(taken.owner, events(4, 5), 256, 60000, 60000).at(0).integer, 5);
  EXPECT_EQ(read_after(0).events, expected(1, 5));
  // A second takeover makes epoch 2, and fences the first taker.
  ASSERT_TRUE(run(io_, call(conn_.get(), {"HSET", keys_.meta, "lease", "1"})));
  const auto again = take_over(keys_, io_, conn_.get(), "gw-c");
  ASSERT_EQ(again.type, kind::ours);
  EXPECT_EQ(again.owner, "gw-c/2");
  EXPECT_EQ(write(taken.owner, events(6, 6)).at(0).text.rfind("FENCED", 0), 0U);
  // Once it ended, nobody takes it over.
  core::redis_journal_write end;
  end.first_seq = 6;
  end.end = core::encode_journal_end(core::journal_summary{}, "");
  ASSERT_EQ(write(again.owner, end, 256, 60000, 60000).at(0).integer, 5);
  ASSERT_TRUE(run(io_, call(conn_.get(), {"HSET", keys_.meta, "lease", "1"})));
  EXPECT_EQ(take_over(keys_, io_, conn_.get(), "gw-d").type, kind::ended);
}

}  // namespace
}  // namespace nines::test
