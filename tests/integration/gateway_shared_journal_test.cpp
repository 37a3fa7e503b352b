// The shared journal ([journal] store): gateway replicas that copy their journaled streams to a
// real Redis (Debian's redis-server on 127.78.X.1, tests/integration/redis_harness.hpp), so that a
// client that dropped can reconnect with Last-Event-ID to another replica. The bytes it gets there
// are compared with what the producing replica's own journal holds.

#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <mutex>
#include <thread>

#include "harness.hpp"
#include "redis_harness.hpp"

namespace nines::test {
namespace {

std::string shared_journal_toml(const std::string& redis_host, const std::string& extra = {}) {
  return "\n[journal]\nmode = \"keyed\"\nstore = \"redis://" + redis_host + ":6379/0\"\n" + extra;
}

// The events of a raw SSE body, each with its blank line.
std::vector<std::string> raw_events(const std::string& body) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < body.size()) {
    const auto end = body.find("\n\n", at);
    const auto size = end == std::string::npos ? body.size() - at : end + 2 - at;
    out.push_back(body.substr(at, size));
    at += size;
  }
  return out;
}

std::string joined(const std::vector<std::string>& events, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < events.size(); ++i) {
    out += events[i];
  }
  return out;
}

class shared_journal : public ::testing::Test {
 protected:
  void start(const std::string& redis_host, unsigned replicas, const std::string& extra = {}) {
    mock_ = start_mock({"--faults", "tpot_ms=5"});
    for (unsigned i = 0; i < replicas; ++i) {
      gateways_.push_back(
          start_gateway(upstreams_toml({mock_.url()}) + shared_journal_toml(redis_host, extra)));
    }
  }
  bool redis_up_everywhere(std::uint64_t value) {
    return eventually([&] {
      for (const auto& g : gateways_) {
        if (metric_value(g.admin_port, "nines_redis_up") != value) {
          return false;
        }
      }
      return true;
    });
  }
  server mock_;
  std::vector<server> gateways_;
};

// What one client did: the events it had from the producer, and the rest from another replica.
struct dropped_stream {
  std::string id;
  std::string body;
  std::vector<core::sse_event> first_part;
  response rest;
  unsigned producer = 0;
};

TEST_F(shared_journal, a_client_that_dropped_gets_the_rest_byte_for_byte_from_another_replica) {
  auto redis = start_redis("127.78.20.1");
  start("127.78.20.1", 3);
  ASSERT_TRUE(redis_up_everywhere(1));
#ifdef NINES_SANITIZED
  constexpr int streams = 200;
#else
  constexpr int streams = 1000;
#endif
  constexpr int threads = 10;
  std::vector<dropped_stream> done(streams);
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      for (int i = next++; i < streams; i = next++) {
        auto& d = done[static_cast<std::size_t>(i)];
        d.id = "agent-" + std::to_string(i);
        d.body = chat_body("shared journal " + std::to_string(i), true);
        d.producer = static_cast<unsigned>(i) % 3;
        const unsigned other = (d.producer + 1 + static_cast<unsigned>(i / 3) % 2) % 3;
        {
          stream_reader reader(gateways_[d.producer].port, "/v1/chat/completions", d.body, true,
                               {{"X-Request-Id", d.id}});
          // Drops after 1 to 25 of the 27 events (role, 24 tokens, finish, [DONE]), or a few more
          // when they came in the same read.
          if (!reader.read_events(1 + static_cast<std::size_t>(i) % 25)) {
            continue;
          }
          d.first_part = reader.events();
        }
        d.rest = http_call(gateways_[other].port, "POST", "/v1/chat/completions", d.body,
                           {{"X-Request-Id", d.id}, {"Last-Event-ID", *d.first_part.back().id}});
      }
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  int identical = 0;
  for (int i = 0; i < streams; ++i) {
    const auto& d = done[static_cast<std::size_t>(i)];
    ASSERT_FALSE(d.first_part.empty()) << d.id;
    ASSERT_EQ(d.rest.status, 200U) << d.id << ": " << d.rest.body;
    // The producer's own journal holds the whole stream: the reference.
    auto whole = http_call(gateways_[d.producer].port, "POST", "/v1/chat/completions", d.body,
                           {{"X-Request-Id", d.id}, {"Last-Event-ID", d.id + ":0"}});
    ASSERT_EQ(whole.status, 200U) << d.id;
    const auto reference = raw_events(whole.body);
    const auto had = d.first_part.size();
    ASSERT_GE(reference.size(), had);
    EXPECT_EQ(d.rest.body, joined(reference, had)) << d.id << " after " << had << " events";
    auto all = d.first_part;
    const auto rest = sse_events(d.rest.body);
    all.insert(all.end(), rest.begin(), rest.end());
    EXPECT_EQ(stream_text(all), expected_answer(d.body, true)) << d.id;
    identical += d.rest.body == joined(reference, had) ? 1 : 0;
  }
  EXPECT_EQ(identical, streams);
  // One generation per stream: the reconnects read Redis, they started nothing.
  EXPECT_EQ(mock_stat(mock_.port, "streams"), static_cast<std::uint64_t>(streams));
  std::uint64_t from_store = 0;
  for (const auto& g : gateways_) {
    from_store += metric_value(g.admin_port, R"(nines_journal_replays_total{kind="store"})");
  }
  EXPECT_EQ(from_store, static_cast<std::uint64_t>(streams));
}

TEST_F(shared_journal, another_replica_refuses_the_id_with_other_credentials_or_another_body) {
  auto redis = start_redis("127.78.21.1");
  start("127.78.21.1", 2);
  ASSERT_TRUE(redis_up_everywhere(1));
  const auto body = chat_body("mine only", true);
  const std::map<std::string, std::string> mine{{"Authorization", "Bearer agent-a"},
                                                {"X-Request-Id", "step-1"}};
  auto first = http_call(gateways_[0].port, "POST", "/v1/chat/completions", body, mine);
  ASSERT_EQ(first.status, 200U);
  const auto events = sse_events(first.body);
  ASSERT_GT(events.size(), 3U);
  const auto id = *events[2].id;
  // The same id from other credentials, or with another request: not found (nothing told).
  auto theirs = http_call(gateways_[1].port, "POST", "/v1/chat/completions", body,
                          {{"Authorization", "Bearer agent-b"}, {"Last-Event-ID", id}});
  EXPECT_EQ(theirs.status, 410U) << theirs.body;
  EXPECT_NE(theirs.body.find("last_event_id_unknown"), std::string::npos) << theirs.body;
  auto other_body =
      http_call(gateways_[1].port, "POST", "/v1/chat/completions", chat_body("not mine", true),
                {{"Authorization", "Bearer agent-a"}, {"Last-Event-ID", id}});
  EXPECT_EQ(other_body.status, 410U) << other_body.body;
  // And the owner gets it, from event 4 on.
  auto again = http_call(gateways_[1].port, "POST", "/v1/chat/completions", body,
                         {{"Authorization", "Bearer agent-a"}, {"Last-Event-ID", id}});
  ASSERT_EQ(again.status, 200U);
  EXPECT_EQ(again.body, joined(raw_events(first.body), 3));
}

TEST_F(shared_journal, with_redis_away_streams_go_on_and_it_is_used_again_once_it_is_back) {
  start("127.78.22.1", 2);  // nothing listens there yet
  const auto body = chat_body("no redis", true);
  auto plain = http_call(gateways_[0].port, "POST", "/v1/chat/completions", body,
                         {{"X-Request-Id", "while-down"}});
  ASSERT_EQ(plain.status, 200U);
  EXPECT_EQ(stream_text(sse_events(plain.body)), expected_answer(body, true));
  EXPECT_EQ(metric_value(gateways_[0].admin_port, "nines_redis_up"), 0U);
  // Not here, and the shared journal cannot say: 503, to retry (not 410: it may exist).
  auto elsewhere = http_call(gateways_[1].port, "POST", "/v1/chat/completions", body,
                             {{"X-Request-Id", "while-down"}, {"Last-Event-ID", "while-down:3"}});
  EXPECT_EQ(elsewhere.status, 503U) << elsewhere.body;
  EXPECT_NE(elsewhere.body.find("shared journal cannot be reached"), std::string::npos)
      << elsewhere.body;
  // The readiness a load balancer sees does not depend on Redis.
  EXPECT_EQ(http_call(gateways_[0].port, "GET", "/readyz").status, 200U);

  auto redis = start_redis("127.78.22.1");
  ASSERT_TRUE(redis_up_everywhere(1));
  const auto later = chat_body("redis back", true);
  auto produced = http_call(gateways_[0].port, "POST", "/v1/chat/completions", later,
                            {{"X-Request-Id", "after"}});
  ASSERT_EQ(produced.status, 200U);
  auto resumed = http_call(gateways_[1].port, "POST", "/v1/chat/completions", later,
                           {{"X-Request-Id", "after"}, {"Last-Event-ID", "after:5"}});
  ASSERT_EQ(resumed.status, 200U) << resumed.body;
  EXPECT_EQ(resumed.body, joined(raw_events(produced.body), 5));
}

TEST_F(shared_journal, a_redis_that_hangs_holds_up_no_stream_and_is_used_again_when_it_wakes) {
  auto redis = start_redis("127.78.27.1");
  start("127.78.27.1", 2);
  ASSERT_TRUE(redis_up_everywhere(1));
  // Stopped, not dead: its connections stay open and nothing answers on them.
  redis.proc->signal(SIGSTOP);
  std::vector<std::thread> clients;
  std::vector<response> answers(20);
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] {
      answers[static_cast<std::size_t>(i)] =
          http_call(gateways_[static_cast<std::size_t>(i % 2)].port, "POST", "/v1/chat/completions",
                    chat_body("hung " + std::to_string(i), true),
                    {{"X-Request-Id", "hung-" + std::to_string(i)}});
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(answers[static_cast<std::size_t>(i)].status, 200U);
    EXPECT_EQ(stream_text(sse_events(answers[static_cast<std::size_t>(i)].body)),
              expected_answer(chat_body("hung " + std::to_string(i), true), true));
  }
  ASSERT_TRUE(redis_up_everywhere(0));  // its writer gave up on the silent connection
  // A reconnect elsewhere cannot be served meanwhile: a defined 503, not a hang.
  auto elsewhere =
      http_call(gateways_[1].port, "POST", "/v1/chat/completions", chat_body("hung 0", true),
                {{"X-Request-Id", "hung-0"}, {"Last-Event-ID", "hung-0:3"}});
  EXPECT_EQ(elsewhere.status, 503U) << elsewhere.body;
  redis.proc->signal(SIGCONT);
  ASSERT_TRUE(redis_up_everywhere(1));
  // What was queued while it slept got there: the stream produced on the first replica is read
  // whole on the second.
  response copy;
  ASSERT_TRUE(eventually([&] {
    copy = http_call(gateways_[1].port, "POST", "/v1/chat/completions", chat_body("hung 0", true),
                     {{"X-Request-Id", "hung-0"}, {"Last-Event-ID", "hung-0:3"}});
    return copy.status == 200U;
  })) << copy.status
      << " " << copy.body;
  EXPECT_EQ(copy.body, joined(raw_events(answers[0].body), 3));
}

TEST_F(shared_journal, one_idempotency_key_sent_to_two_replicas_at_once_is_one_generation) {
  auto redis = start_redis("127.78.28.1");
  start("127.78.28.1", 2);
  ASSERT_TRUE(redis_up_everywhere(1));
#ifdef NINES_SANITIZED
  constexpr int keys = 100;
#else
  constexpr int keys = 500;
#endif
  constexpr int threads = 8;
  std::vector<std::array<response, 2>> answers(keys);
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      for (int i = next++; i < keys; i = next++) {
        const auto body = chat_body("pay once " + std::to_string(i), true);
        const std::map<std::string, std::string> headers{
            {"Idempotency-Key", "step-" + std::to_string(i)}, {"Authorization", "Bearer agent-a"}};
        // Both replicas at once: the second request leaves while the first is in flight.
        std::thread other([&] {
          answers[static_cast<std::size_t>(i)][1] =
              http_call(gateways_[1].port, "POST", "/v1/chat/completions", body, headers);
        });
        answers[static_cast<std::size_t>(i)][0] =
            http_call(gateways_[0].port, "POST", "/v1/chat/completions", body, headers);
        other.join();
      }
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  for (int i = 0; i < keys; ++i) {
    const auto& pair = answers[static_cast<std::size_t>(i)];
    ASSERT_EQ(pair[0].status, 200U) << i << ": " << pair[0].body;
    ASSERT_EQ(pair[1].status, 200U) << i << ": " << pair[1].body;
    EXPECT_EQ(pair[0].body, pair[1].body) << i;  // byte for byte, ids included
    EXPECT_EQ(stream_text(sse_events(pair[0].body)),
              expected_answer(chat_body("pay once " + std::to_string(i), true), true));
  }
  // Exactly one generation per key, whichever replica claimed it; the other replica followed it.
  EXPECT_EQ(mock_stat(mock_.port, "streams"), static_cast<std::uint64_t>(keys));
  std::uint64_t followed = 0;
  for (const auto& g : gateways_) {
    followed += metric_value(g.admin_port, R"(nines_journal_replays_total{kind="idempotency"})");
  }
  EXPECT_EQ(followed, static_cast<std::uint64_t>(keys));
  // The same key with another body, on the other replica: 422.
  auto reused = http_call(gateways_[1].port, "POST", "/v1/chat/completions",
                          chat_body("something else", true),
                          {{"Idempotency-Key", "step-0"}, {"Authorization", "Bearer agent-a"}});
  EXPECT_EQ(reused.status, 422U) << reused.body;
  EXPECT_NE(reused.body.find("idempotency_key_reused"), std::string::npos);
}

TEST_F(shared_journal, a_failed_generation_is_not_replayed_to_a_retry_on_another_replica) {
  auto redis = start_redis("127.78.29.1");
  start("127.78.29.1", 2);
  ASSERT_TRUE(redis_up_everywhere(1));
  const auto body = chat_body("retry me", true);
  // Every attempt of the first try fails (the mock answers 503).
  auto failed = http_call(gateways_[0].port, "POST", "/v1/chat/completions", body,
                          {{"Idempotency-Key", "retry-1"}, {"x-mock-fault", "error_rate=1"}});
  ASSERT_GE(failed.status, 500U) << failed.body;
  ASSERT_GE(mock_stat(mock_.port, "errors_503"), 1U);
  ASSERT_EQ(mock_stat(mock_.port, "completed"), 0U);
  // The client retries with the same key and lands on the other replica: a new generation.
  response retried;
  ASSERT_TRUE(eventually([&] {
    retried = http_call(gateways_[1].port, "POST", "/v1/chat/completions", body,
                        {{"Idempotency-Key", "retry-1"}});
    return retried.status == 200U;
  })) << retried.status
      << " " << retried.body;
  EXPECT_EQ(stream_text(sse_events(retried.body)), expected_answer(body, true));
  EXPECT_EQ(mock_stat(mock_.port, "completed"), 1U);  // a generation of its own
}

TEST_F(shared_journal, a_copy_that_lost_events_while_redis_was_away_is_refused_not_cut) {
  // A long answer (3,000 tokens) produced while Redis is away, with a 64 KiB queue for it: its
  // copy cannot be whole.
  mock_ = start_mock({"--tokens", "3000"});
  gateways_.push_back(
      start_gateway(upstreams_toml({mock_.url()}) +
                    shared_journal_toml("127.78.23.1", "store_queue_bytes = 65536\n")));
  gateways_.push_back(
      start_gateway(upstreams_toml({mock_.url()}) + shared_journal_toml("127.78.23.1")));
  const auto body = chat_body("long", true);
  auto produced = http_call(gateways_[0].port, "POST", "/v1/chat/completions", body,
                            {{"X-Request-Id", "long-1"}});
  ASSERT_EQ(produced.status, 200U);
  EXPECT_GE(metric_value(gateways_[0].admin_port, "nines_journal_store_incomplete_total"), 1U);
  auto redis = start_redis("127.78.23.1");
  ASSERT_TRUE(redis_up_everywhere(1));
  // The incomplete mark reaches Redis with the writer's first pipeline.
  ASSERT_TRUE(eventually([&] {
    return metric_value(gateways_[0].admin_port, "nines_journal_store_appends_total") >= 1;
  }));
  auto resumed = http_call(gateways_[1].port, "POST", "/v1/chat/completions", body,
                           {{"X-Request-Id", "long-1"}, {"Last-Event-ID", "long-1:10"}});
  EXPECT_EQ(resumed.status, 410U) << resumed.body.substr(0, 300);
  EXPECT_NE(resumed.body.find("misses events"), std::string::npos) << resumed.body.substr(0, 300);
}

TEST_F(shared_journal, a_reconnect_follows_a_stream_another_replica_is_still_generating) {
  auto redis = start_redis("127.78.25.1");
  mock_ = start_mock({"--faults", "tpot_ms=100"});  // 27 events in about 2.7 s
  for (int i = 0; i < 2; ++i) {
    gateways_.push_back(
        start_gateway(upstreams_toml({mock_.url()}) + shared_journal_toml("127.78.25.1")));
  }
  ASSERT_TRUE(redis_up_everywhere(1));
  const auto body = chat_body("live elsewhere", true);
  std::vector<core::sse_event> had;
  {
    stream_reader reader(gateways_[0].port, "/v1/chat/completions", body, true,
                         {{"X-Request-Id", "live-1"}});
    ASSERT_TRUE(reader.read_events(3));
    had = reader.events();
  }
  stream_reader elsewhere(gateways_[1].port, "/v1/chat/completions", body, true,
                          {{"X-Request-Id", "live-1"}, {"Last-Event-ID", *had.back().id}});
  ASSERT_TRUE(elsewhere.read_events(1));
  EXPECT_EQ(elsewhere.status(), 200U);
  // The first events replayed while the generation still runs on the first replica.
  EXPECT_EQ(mock_stat(mock_.port, "completed"), 0U);
  EXPECT_EQ(*elsewhere.events().front().id, "live-1:" + std::to_string(had.size() + 1));
  EXPECT_FALSE(elsewhere.read_events(1000));  // to its end
  ASSERT_TRUE(elsewhere.ended());
  auto all = had;
  all.insert(all.end(), elsewhere.events().begin(), elsewhere.events().end());
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(*all[i].id, "live-1:" + std::to_string(i + 1));
  }
  EXPECT_EQ(all.back().data, "[DONE]");
  EXPECT_EQ(stream_text(all), expected_answer(body, true));
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 1U);
}

// A primary, two replicas and three Sentinels; the primary SIGKILLed while 200 streams run on
// three replicas. No client stream breaks (Redis is not on their path), and once a replica is
// promoted every stream's copy is whole: read back from another replica, byte for byte what the
// producer's own journal holds (no event lost, none twice).
TEST(shared_journal_failover, the_redis_primary_killed_under_200_streams_loses_nothing) {
  auto topology = start_redis_topology(26, "nines");
  auto mock = start_mock({"--faults", "tpot_ms=20"});
  std::string sentinels;
  for (const auto& s : topology.sentinels) {
    sentinels += (sentinels.empty() ? "" : ",") + s.host + ":" + std::to_string(s.port);
  }
  const std::string toml = upstreams_toml({mock.url()}) +
                           "\n[journal]\nmode = \"keyed\"\nstore = \"redis-sentinel://" +
                           sentinels + "/nines\"\n";
  std::vector<server> gateways;
  for (int i = 0; i < 3; ++i) {
    gateways.push_back(start_gateway(toml));
  }
  const auto redis_up = [&](std::uint64_t value) {
    return eventually([&] {
      for (const auto& g : gateways) {
        if (metric_value(g.admin_port, "nines_redis_up") != value) {
          return false;
        }
      }
      return true;
    });
  };
  ASSERT_TRUE(redis_up(1));
  constexpr int streams = 200;
  constexpr int threads = 20;
  std::vector<response> answers(streams);
  std::atomic<int> next{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&] {
      for (int i = next++; i < streams; i = next++) {
        answers[static_cast<std::size_t>(i)] =
            http_call(gateways[static_cast<std::size_t>(i % 3)].port, "POST",
                      "/v1/chat/completions", chat_body("failover " + std::to_string(i), true),
                      {{"X-Request-Id", "f-" + std::to_string(i)}});
      }
    });
  }
  // Killed once a fifth of the streams have started.
  ASSERT_TRUE(eventually([&] { return mock_stat(mock.port, "streams") >= streams / 5; }));
  topology.primary.proc->signal(SIGKILL);
  for (auto& c : clients) {
    c.join();
  }
  for (int i = 0; i < streams; ++i) {
    const auto& a = answers[static_cast<std::size_t>(i)];
    ASSERT_EQ(a.status, 200U) << i;
    EXPECT_EQ(stream_text(sse_events(a.body)),
              expected_answer(chat_body("failover " + std::to_string(i), true), true))
        << i;
  }
  ASSERT_TRUE(redis_up(1));  // on the promoted replica
  for (const auto& g : gateways) {
    // Each writer lost its primary and found the promoted one through the Sentinels.
    EXPECT_GE(metric_value(g.admin_port, "nines_journal_store_connects_total"), 2U);
  }
  for (int i = 0; i < streams; ++i) {
    const auto producer = static_cast<std::size_t>(i % 3);
    const auto id = "f-" + std::to_string(i);
    const auto body = chat_body("failover " + std::to_string(i), true);
    auto local = http_call(gateways[producer].port, "POST", "/v1/chat/completions", body,
                           {{"X-Request-Id", id}, {"Last-Event-ID", id + ":0"}});
    response copy;
    // Whole once the writer has sent what waited for the new primary.
    ASSERT_TRUE(eventually([&] {
      copy = http_call(gateways[(producer + 1) % 3].port, "POST", "/v1/chat/completions", body,
                       {{"X-Request-Id", id}, {"Last-Event-ID", id + ":0"}});
      return copy.status == 200U && copy.body.find("[DONE]") != std::string::npos;
    })) << id
        << ": " << copy.status << " " << copy.body.substr(0, 300);
    EXPECT_EQ(copy.body, local.body) << id;
  }
}

}  // namespace
}  // namespace nines::test
