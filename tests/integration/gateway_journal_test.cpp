// The journal: SSE ids on every event, Last-Event-ID reconnects (with curl as the client),
// Idempotency-Key repeats, generations that outlive their client, and the journal's memory bound.

#include <boost/json.hpp>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

// Journaling by request header is off unless configured (a header would otherwise let any client
// start generations that outlive it).
const std::string journal_keyed = "\n[journal]\nmode = \"keyed\"\n";

// Waits (bounded) until the mock's counter reaches `value`: synchronisation on an event.
bool mock_reaches(const server& mock, const std::string& key, std::uint64_t value) {
  for (int i = 0; i < 200000; ++i) {
    if (mock_stat(mock.port, key) >= value) {
      return true;
    }
    std::this_thread::yield();
  }
  return false;
}

TEST(gateway_journal, every_event_carries_an_id_in_order) {
  auto mock = start_mock();
  auto gw = start_gateway(upstreams_toml({mock.url()}) + journal_keyed);
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("ids", true));
  ASSERT_EQ(r.status, 200U);
  const auto id = r.headers["x-request-id"];
  ASSERT_FALSE(id.empty());
  const auto events = sse_events(r.body);
  ASSERT_EQ(events.size(), 24U + 3U);  // role, 24 tokens, finish, [DONE]
  for (std::size_t i = 0; i < events.size(); ++i) {
    ASSERT_TRUE(events[i].id);
    EXPECT_EQ(*events[i].id, id + ":" + std::to_string(i + 1));
  }
}

class journal : public ::testing::Test {
 protected:
  void SetUp() override {
    mock_ = start_mock({"--faults", "tpot_ms=20"});
    gw_ = start_gateway(upstreams_toml({mock_.url()}) + journal_keyed);
  }
  server mock_, gw_;
};

TEST_F(journal, a_client_that_dropped_gets_the_rest_with_last_event_id_from_curl) {
  const auto body = chat_body("reconnect", true);
  std::string last_id;
  std::vector<core::sse_event> first_part;
  {
    stream_reader reader(gw_.port, "/v1/chat/completions", body, true,
                         {{"X-Request-Id", "agent-7-step-3"}});
    ASSERT_TRUE(reader.read_events(6));
    first_part = reader.events();
    last_id = *first_part.back().id;
  }  // the connection drops here, mid-stream
  EXPECT_EQ(last_id.rfind("agent-7-step-3:", 0), 0U);
  const std::string path = "/tmp/nines-journal-body-" + std::to_string(::getpid());
  std::ofstream(path) << body;
  process curl({"/usr/bin/curl", "-sN", "--max-time", "30",
                "http://127.0.0.1:" + std::to_string(gw_.port) + "/v1/chat/completions", "-H",
                "content-type: application/json", "-H", "X-Request-Id: agent-7-step-3", "-H",
                "Last-Event-ID: " + last_id, "--data-binary", "@" + path});
  ASSERT_EQ(curl.wait_exit(std::chrono::milliseconds(30000)), 0);
  const auto rest = sse_events(curl.output());
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back().data, "[DONE]");
  // The events right after the last one the client had, then the end: nothing repeated, nothing
  // missing.
  const auto seq = std::stoul(last_id.substr(last_id.rfind(':') + 1));
  EXPECT_EQ(*rest.front().id, "agent-7-step-3:" + std::to_string(seq + 1));
  std::vector<core::sse_event> all = first_part;
  all.insert(all.end(), rest.begin(), rest.end());
  EXPECT_EQ(stream_text(all), expected_answer(body, true));
  // One generation: it went on while the client was away.
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 1U);
  EXPECT_EQ(metric_value(gw_.admin_port, R"(nines_journal_replays_total{kind="last_event_id"})"), 1U);
}

TEST_F(journal, a_journaled_generation_outlives_its_client_and_a_plain_one_is_cancelled) {
  {
    stream_reader reader(gw_.port, "/v1/chat/completions", chat_body("keep going", true), true,
                         {{"Idempotency-Key", "k-1"}});
    ASSERT_TRUE(reader.read_events(3));
  }
  EXPECT_TRUE(mock_reaches(mock_, "completed", 1));  // finished without anyone reading
  EXPECT_EQ(mock_stat(mock_.port, "aborted"), 0U);
  {
    stream_reader reader(gw_.port, "/v1/chat/completions", chat_body("stop now", true));
    ASSERT_TRUE(reader.read_events(3));
  }
  // Not journaled: the client's disconnect closes the upstream connection, the GPU stops.
  EXPECT_TRUE(mock_reaches(mock_, "aborted", 1));
  EXPECT_EQ(mock_stat(mock_.port, "completed"), 1U);
  EXPECT_TRUE(gw_.proc->wait_for_output(R"("journal":"detached")"));
}

TEST_F(journal, concurrent_duplicates_of_an_idempotency_key_share_one_generation) {
  const auto body = chat_body("pay once", true);
  constexpr int clients = 8;
  std::vector<response> answers(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      answers[i] = http_call(gw_.port, "POST", "/v1/chat/completions", body,
                             {{"Idempotency-Key", "step-42"}, {"Authorization", "Bearer agent-a"}});
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  for (const auto& a : answers) {
    ASSERT_EQ(a.status, 200U);
    EXPECT_EQ(a.body, answers[0].body);  // byte for byte, ids included
    EXPECT_EQ(stream_text(sse_events(a.body)), expected_answer(body, true));
  }
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 1U);
  EXPECT_EQ(metric_value(gw_.admin_port, R"(nines_journal_replays_total{kind="idempotency"})"),
            static_cast<std::uint64_t>(clients - 1));
  // The same key from other credentials is another key: a generation of its own.
  auto other = http_call(gw_.port, "POST", "/v1/chat/completions", body,
                         {{"Idempotency-Key", "step-42"}, {"Authorization", "Bearer agent-b"}});
  EXPECT_EQ(other.status, 200U);
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 2U);
}

TEST_F(journal, a_repeat_gets_the_finished_whole_answer_and_another_body_gets_422) {
  const auto body = chat_body("whole", false);
  auto first = http_call(gw_.port, "POST", "/v1/chat/completions", body, {{"Idempotency-Key", "w"}});
  ASSERT_EQ(first.status, 200U);
  EXPECT_EQ(answer_text(first.body), expected_answer(body, true));
  auto again = http_call(gw_.port, "POST", "/v1/chat/completions", body, {{"Idempotency-Key", "w"}});
  EXPECT_EQ(again.status, 200U);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(mock_stat(mock_.port, "completed"), 1U);
  auto conflict = http_call(gw_.port, "POST", "/v1/chat/completions", chat_body("other", false),
                            {{"Idempotency-Key", "w"}});
  EXPECT_EQ(conflict.status, 422U);
  EXPECT_NE(conflict.body.find("idempotency_key_reused"), std::string::npos);
  EXPECT_EQ(mock_stat(mock_.port, "completed"), 1U);
}

TEST_F(journal, an_unknown_last_event_id_is_a_clear_410) {
  auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat_body("x", true),
                     {{"Last-Event-ID", "never-seen:4"}});
  EXPECT_EQ(r.status, 410U);
  EXPECT_NE(r.body.find("last_event_id_unknown"), std::string::npos);
  // A stream that was not journaled cannot be resumed either, and says so.
  auto plain = http_call(gw_.port, "POST", "/v1/chat/completions", chat_body("y", true));
  const auto id = *sse_events(plain.body).front().id;
  r = http_call(gw_.port, "POST", "/v1/chat/completions", chat_body("y", true),
                {{"Last-Event-ID", id}});
  EXPECT_EQ(r.status, 410U);
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 1U);
}

TEST(gateway_journal, a_failed_generation_is_not_replayed_to_a_retry) {
  auto mock = start_mock({"--faults", "error_rate=1"});
  auto gw = start_gateway(upstreams_toml({mock.url()}) + "\n[retry]\nmax_attempts = 1\n" + journal_keyed);
  const auto body = chat_body("retry me", false);
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", body, {{"Idempotency-Key", "r"}})
                .status,
            503U);
  ASSERT_EQ(http_call(mock.port, "POST", "/mock/faults", "{}").status, 200U);
  auto retry = http_call(gw.port, "POST", "/v1/chat/completions", body, {{"Idempotency-Key", "r"}});
  EXPECT_EQ(retry.status, 200U);
  EXPECT_EQ(answer_text(retry.body), expected_answer(body, true));
}

TEST(gateway_journal, memory_stays_within_its_bound_under_load) {
  auto mock = start_mock();
  auto gw = start_gateway(upstreams_toml({mock.url()}) +
                              "\n[journal]\nmode = \"all\"\nmax_bytes = 65536\n",
                          {"--access-log", "off"});
  std::atomic<bool> done{false};
  std::uint64_t highest = 0;
  int samples = 0;
  std::thread watcher([&] {
    while (!done) {
      highest = std::max(highest, metric_value(gw.admin_port, "nines_journal_bytes"));
      ++samples;
    }
  });
  process bench({NINES_BINARY, "bench", "--url", gw.url(), "--requests", "600", "--connections",
                 "24", "--stream", "true"});
  EXPECT_EQ(bench.wait_exit(std::chrono::milliseconds(120000)), 0) << bench.output();
  done = true;
  watcher.join();
  EXPECT_GT(samples, 0);
  EXPECT_LE(highest, 65536U);
  EXPECT_GT(metric_value(gw.admin_port, "nines_journal_evictions_total"), 0U);  // it was full and made room
  EXPECT_LE(metric_value(gw.admin_port, "nines_journal_bytes"), 65536U);
}

}  // namespace
}  // namespace nines::test
