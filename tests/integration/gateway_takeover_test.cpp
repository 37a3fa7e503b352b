// A stream that survives the replica producing it ([journal] store, store_lease_ms): the producing
// replica is SIGKILLed (or hangs) mid-stream, its clients reconnect with Last-Event-ID to other
// replicas, and those take the stream over once its lease runs out: they continue the generation
// from the journaled text on an upstream and the clients get the rest of the same answer.
//
// "The same answer" is checked event by event against an uninterrupted run of the same request
// through a gateway of its own: every event's id and data equal, once the reference's upstream
// identity (the chunk id and created the mock gave it) is replaced by the original's, which is
// what a continuation carries.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <set>
#include <thread>

#include "harness.hpp"
#include "redis_harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

std::string takeover_toml(const std::string& redis_host) {
  return "\n[journal]\nmode = \"keyed\"\nstore = \"redis://" + redis_host +
         ":6379/0\"\nstore_lease_ms = 1000\n";
}

struct chunk_identity {
  std::string id;
  std::int64_t created = 0;
};

chunk_identity identity_of(const std::vector<core::sse_event>& events) {
  for (const auto& e : events) {
    json::error_code ec;
    const auto v = json::parse(e.data, ec);
    const auto* o = ec ? nullptr : v.if_object();
    const auto* id = o ? o->if_contains("id") : nullptr;
    const auto* created = o ? o->if_contains("created") : nullptr;
    if (id && id->is_string() && created && created->is_int64()) {
      return {std::string(id->get_string()), created->get_int64()};
    }
  }
  return {};
}

// `events` as they would read under `to`'s identity (the chunk id and created of another run).
std::vector<std::pair<std::string, std::string>> under_identity(
    const std::vector<core::sse_event>& events, const chunk_identity& from,
    const chunk_identity& to) {
  const auto swap = [](std::string s, const std::string& a, const std::string& b) {
    for (auto at = s.find(a); at != std::string::npos; at = s.find(a, at + b.size())) {
      s.replace(at, a.size(), b);
    }
    return s;
  };
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& e : events) {
    auto data = swap(e.data, "\"id\":\"" + from.id + "\"", "\"id\":\"" + to.id + "\"");
    data = swap(data, "\"created\":" + std::to_string(from.created),
                "\"created\":" + std::to_string(to.created));
    out.emplace_back(e.id.value_or(""), std::move(data));
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> as_pairs(const std::vector<core::sse_event>& ev) {
  return under_identity(ev, {}, {});
}

class takeover : public ::testing::Test {
 protected:
  void start(const std::string& redis_host) {
    mock_ = start_mock({"--faults", "tpot_ms=100"});
    for (unsigned i = 0; i < 3; ++i) {
      gateways_.push_back(start_gateway(upstreams_toml({mock_.url()}) + takeover_toml(redis_host)));
    }
    // The reference: the same upstream, no journal, nothing broken.
    reference_ = start_gateway(upstreams_toml({mock_.url()}), {"--access-log", "off"});
    ASSERT_TRUE(eventually([&] {
      for (const auto& g : gateways_) {
        if (metric_value(g.admin_port, "nines_redis_up") != 1) {
          return false;
        }
      }
      return true;
    }));
  }
  // The uninterrupted answer to `body` under the stream key `id`.
  std::vector<core::sse_event> reference(const std::string& body, const std::string& id) {
    auto r =
        http_call(reference_.port, "POST", "/v1/chat/completions", body, {{"X-Request-Id", id}});
    EXPECT_EQ(r.status, 200U) << r.body;
    return sse_events(r.body);
  }
  // The events a client got before and after its reconnect are the reference's (`ref`), event
  // for event.
  static void expect_the_uninterrupted_answer(const std::vector<core::sse_event>& had,
                                              const std::vector<core::sse_event>& rest,
                                              const std::vector<core::sse_event>& ref,
                                              const std::string& body, const std::string& id) {
    auto all = had;
    all.insert(all.end(), rest.begin(), rest.end());
    ASSERT_FALSE(all.empty()) << id;
    for (const auto& e : all) {
      ASSERT_EQ(e.data.find("\"error\""), std::string::npos) << id << ": " << e.data;
    }
    EXPECT_EQ(stream_text(all), expected_answer(body, true)) << id;
    EXPECT_EQ(all.back().data, "[DONE]") << id;
    EXPECT_EQ(as_pairs(all), under_identity(ref, identity_of(ref), identity_of(had))) << id;
  }
  std::uint64_t summed(const std::string& series) {
    std::uint64_t n = 0;
    for (std::size_t i = 1; i < gateways_.size(); ++i) {
      n += metric_value(gateways_[i].admin_port, series);
    }
    return n;
  }

  server mock_;
  std::vector<server> gateways_;
  server reference_;
};

TEST_F(takeover, a_stream_whose_replica_was_killed_is_continued_by_the_one_its_client_reaches) {
  auto redis = start_redis("127.78.30.1");
  start("127.78.30.1");
  constexpr std::size_t streams = 12;
  struct client {
    std::string id;
    std::string body;
    std::vector<core::sse_event> had;
    response rest;
    std::vector<core::sse_event> ref;
  };
  std::vector<client> clients(streams);
  {
    // Every stream runs on replica 0 (24 tokens, 100 ms each); each client has had 1 to 10 events
    // of it when the replica is killed.
    std::vector<std::unique_ptr<stream_reader>> readers;
    for (std::size_t i = 0; i < streams; ++i) {
      clients[i].id = "taken-" + std::to_string(i);
      clients[i].body = chat_body("taken over " + std::to_string(i), true);
      readers.push_back(std::make_unique<stream_reader>(
          gateways_[0].port, "/v1/chat/completions", clients[i].body, true,
          std::map<std::string, std::string>{{"X-Request-Id", clients[i].id}}));
    }
    for (std::size_t i = 0; i < streams; ++i) {
      ASSERT_TRUE(readers[i]->read_events(1 + i % 10)) << clients[i].id;
      clients[i].had = readers[i]->events();
      ASSERT_FALSE(readers[i]->ended()) << clients[i].id << ": ended before the kill";
    }
    gateways_[0].proc->signal(SIGKILL);
  }
  // Each reconnects to replica 1 or 2, at once: the lease still runs there, and is waited out.
  std::vector<std::thread> reconnects;
  for (std::size_t i = 0; i < streams; ++i) {
    reconnects.emplace_back([&, i] {
      auto& c = clients[i];
      c.rest = http_call(gateways_[1 + i % 2].port, "POST", "/v1/chat/completions", c.body,
                         {{"X-Request-Id", c.id}, {"Last-Event-ID", *c.had.back().id}});
      c.ref = reference(c.body, c.id);
    });
  }
  for (auto& t : reconnects) {
    t.join();
  }
  for (const auto& c : clients) {
    ASSERT_EQ(c.rest.status, 200U) << c.id << ": " << c.rest.body;
    expect_the_uninterrupted_answer(c.had, sse_events(c.rest.body), c.ref, c.body, c.id);
  }
  // Each stream was taken over once, and continued once on the upstream.
  EXPECT_EQ(summed(R"(nines_journal_replays_total{kind="takeover"})"), streams);
  EXPECT_EQ(mock_stat(mock_.port, "continuations"), streams);
  // The taker's copy in Redis is whole: a third reader gets the same from the start.
  const auto& c = clients[0];
  auto again = http_call(gateways_[2].port, "POST", "/v1/chat/completions", c.body,
                         {{"X-Request-Id", c.id}, {"Last-Event-ID", c.id + ":0"}});
  ASSERT_EQ(again.status, 200U) << again.body;
  auto all = c.had;
  const auto rest = sse_events(c.rest.body);
  all.insert(all.end(), rest.begin(), rest.end());
  EXPECT_EQ(as_pairs(sse_events(again.body)), as_pairs(all));
}

TEST_F(takeover, a_replica_that_hung_past_its_lease_is_fenced_off_when_it_wakes) {
  auto redis = start_redis("127.78.31.1");
  start("127.78.31.1");
  const auto body = chat_body("hung producer", true);
  std::vector<core::sse_event> had;
  {
    stream_reader reader(gateways_[0].port, "/v1/chat/completions", body, true,
                         {{"X-Request-Id", "hung"}});
    ASSERT_TRUE(reader.read_events(4));
    had = reader.events();
  }
  gateways_[0].proc->signal(SIGSTOP);
  auto rest = http_call(gateways_[1].port, "POST", "/v1/chat/completions", body,
                        {{"X-Request-Id", "hung"}, {"Last-Event-ID", *had.back().id}});
  ASSERT_EQ(rest.status, 200U) << rest.body;
  expect_the_uninterrupted_answer(had, sse_events(rest.body), reference(body, "hung"), body,
                                  "hung");
  // It wakes and writes on what it had queued: Redis refuses it, the taker's copy stands.
  gateways_[0].proc->signal(SIGCONT);
  EXPECT_TRUE(eventually([&] {
    return metric_value(gateways_[0].admin_port, "nines_journal_store_fenced_total") > 0;
  }));
  auto from_redis = http_call(gateways_[2].port, "POST", "/v1/chat/completions", body,
                              {{"X-Request-Id", "hung"}, {"Last-Event-ID", "hung:0"}});
  ASSERT_EQ(from_redis.status, 200U) << from_redis.body;
  auto all = had;
  const auto continued = sse_events(rest.body);
  all.insert(all.end(), continued.begin(), continued.end());
  EXPECT_EQ(as_pairs(sse_events(from_redis.body)), as_pairs(all));
}

TEST_F(takeover, a_duplicate_of_an_idempotency_key_goes_on_when_the_first_replica_dies) {
  auto redis = start_redis("127.78.32.1");
  start("127.78.32.1");
  const auto body = chat_body("one generation, two replicas", true);
  const std::map<std::string, std::string> key{{"Idempotency-Key", "step-9"},
                                               {"X-Request-Id", "dup"}};
  stream_reader first(gateways_[0].port, "/v1/chat/completions", body, true, key);
  ASSERT_TRUE(first.read_events(3));
  // The same key on replica 1 follows replica 0's generation (it claimed the key first).
  stream_reader second(gateways_[1].port, "/v1/chat/completions", body, true, key);
  ASSERT_TRUE(second.read_events(4));
  gateways_[0].proc->signal(SIGKILL);
  EXPECT_FALSE(second.read_events(1000));  // read to its end
  ASSERT_EQ(second.status(), 200U);
  // One generation, continued once: nothing generated it afresh.
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 2U);  // the first, and its continuation
  EXPECT_EQ(mock_stat(mock_.port, "continuations"), 1U);
  expect_the_uninterrupted_answer(second.events(), {}, reference(body, "dup"), body, "dup");
}

}  // namespace
}  // namespace nines::test
