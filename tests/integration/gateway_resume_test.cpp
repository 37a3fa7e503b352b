// Unbroken streams: a stream that breaks after its first byte is continued on another upstream
// and the client receives one stream, byte for byte the uninterrupted answer.

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <set>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

// What a client must see: the exact text, one role chunk, one finish_reason, one id, [DONE].
void expect_one_unbroken_stream(const std::vector<core::sse_event>& events,
                                const std::string& expected, const std::string& what) {
  ASSERT_FALSE(events.empty()) << what;
  EXPECT_EQ(events.back().data, "[DONE]") << what;
  EXPECT_EQ(stream_text(events), expected) << what;
  std::set<std::string> ids;
  int roles = 0;
  int finishes = 0;
  for (const auto& e : events) {
    if (e.data == "[DONE]") {
      continue;
    }
    auto o = json::parse(e.data).as_object();
    ASSERT_FALSE(o.contains("error")) << what << ": " << e.data;
    ids.insert(std::string(o["id"].as_string()));
    for (const auto& c : o["choices"].as_array()) {
      const auto& co = c.as_object();
      if (const auto* d = co.if_contains("delta"); d && d->as_object().contains("role")) {
        ++roles;
      }
      if (!co.at("finish_reason").is_null()) {
        ++finishes;
      }
    }
  }
  EXPECT_EQ(ids.size(), 1U) << what << ": the continuation must carry the original id";
  EXPECT_EQ(finishes, 1) << what;
  if (what.find("chat") != std::string::npos) {
    EXPECT_EQ(roles, 1) << what;
  }
}

class gateway_resume : public ::testing::Test {
 protected:
  void SetUp() override {
    breaking_ = start_mock();
    healthy_ = start_mock();
    gw_ = start_gateway(breaks_then_continues_toml(breaking_.url(), healthy_.url()),
                        {"--access-log", "off"});
  }
  // Replaces the breaking upstream's faults with one: {"<kind>": k}.
  void set_fault(const std::string& kind, int k) {
    const std::string faults = "{\"" + kind + "\":" + std::to_string(k) + "}";
    ASSERT_EQ(http_call(breaking_.port, "POST", "/mock/faults", faults).status, 200U);
  }
  server breaking_, healthy_, gw_;
};

// Every break position from before the first token to before the last, for each kind of break:
// reset, clean close mid-event (half a chunk, inside a multi-byte character for some tokens),
// malformed event. Chat and completions.
TEST_F(gateway_resume, every_break_position_and_kind_gives_the_exact_answer) {
  for (const std::string kind : {"die_after", "cut_after", "malformed_after"}) {
    for (int k = 0; k < 24; ++k) {
      set_fault(kind, k);
      const auto chat = chat_body("position " + std::to_string(k), true);
      auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
      ASSERT_EQ(r.status, 200U);
      expect_one_unbroken_stream(sse_events(r.body), expected_answer(chat, true),
                                 "chat " + kind + "=" + std::to_string(k));
      const std::string completion =
          R"({"model":"m","stream":true,"prompt":"Position )" + std::to_string(k) + R"(:"})";
      auto c = http_call(gw_.port, "POST", "/v1/completions", completion);
      ASSERT_EQ(c.status, 200U);
      expect_one_unbroken_stream(sse_events(c.body), expected_answer(completion, false),
                                 "completion " + kind + "=" + std::to_string(k));
    }
  }
  // The healthy upstream really did the continuing: every case but the three completions broken
  // before their first event (k = 0: nothing reached the client, so that was a plain retry).
  EXPECT_EQ(mock_stat(healthy_.port, "continuations"), 3U * 24U * 2U - 3U);
}

TEST_F(gateway_resume, a_stall_is_continued_after_the_idle_timeout) {
  for (int k : {0, 1, 12, 23}) {
    set_fault("stall_after", k);
    const auto chat = chat_body("stall " + std::to_string(k), true);
    auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
    expect_one_unbroken_stream(sse_events(r.body), expected_answer(chat, true),
                               "chat stall_after=" + std::to_string(k));
  }
}

TEST_F(gateway_resume, usage_adds_up_and_max_tokens_shrinks) {
  set_fault("die_after", 5);
  const auto chat = chat_body("usage", true, R"("stream_options":{"include_usage":true},"max_tokens":10)");
  auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
  auto events = sse_events(r.body);
  // Ten tokens in all: five from the first upstream, five from the continuation.
  EXPECT_EQ(stream_text(events), expected_answer(chat, true));
  ASSERT_GE(events.size(), 2U) << r.body;
  auto usage = json::parse(events[events.size() - 2].data).as_object()["usage"].as_object();
  EXPECT_EQ(usage["completion_tokens"].to_number<int>(), 10);
  EXPECT_EQ(usage["total_tokens"].to_number<int>(),
            usage["prompt_tokens"].to_number<int>() + usage["completion_tokens"].to_number<int>());
  std::string finish;
  for (const auto& e : events) {
    if (e.data.find("\"finish_reason\":\"length\"") != std::string::npos) {
      finish = "length";
    }
  }
  EXPECT_EQ(finish, "length");
}

// A tool call reaches the client whole or not at all: its argument deltas are held until the call
// is complete, so a break before that (in the content or inside the call) is continued and the
// client gets the content and one complete call.
TEST_F(gateway_resume, tool_calls_are_never_half_delivered) {
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"tap","parameters":{"type":"object"}}}])";
  // 12 content tokens then 4 argument deltas: break at every one of the 16 emissions.
  for (int k = 0; k < 16; ++k) {
    set_fault("die_after", k);
    const auto chat = chat_body("tool " + std::to_string(k), true, tools);
    auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
    auto events = sse_events(r.body);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().data, "[DONE]") << k;
    const auto full = expected_answer(chat, true);
    std::string content;
    std::string arguments;
    std::set<std::string> call_ids;
    std::string finish;
    for (const auto& e : events) {
      if (e.data == "[DONE]") {
        continue;
      }
      auto o = json::parse(e.data).as_object();
      const auto& choice = o["choices"].as_array()[0].as_object();
      const auto& delta = choice.at("delta").as_object();
      if (const auto* c = delta.if_contains("content"); c && c->is_string()) {
        content += c->as_string();
      }
      if (const auto* calls = delta.if_contains("tool_calls")) {
        const auto& call = calls->as_array()[0].as_object();
        if (const auto* id = call.if_contains("id")) {
          call_ids.insert(std::string(id->as_string()));
        }
        arguments += call.at("function").as_object().at("arguments").as_string();
      }
      if (!choice.at("finish_reason").is_null()) {
        finish = std::string(choice.at("finish_reason").as_string());
      }
    }
    // The mock's full answer: 12 content tokens, then the call's arguments from tokens 12..23.
    std::size_t cut = 0;
    for (int i = 0; i < 12; ++i) {
      cut = full.find(' ', cut) + 1;
    }
    EXPECT_EQ(content, full.substr(0, cut)) << k;
    EXPECT_EQ(arguments, "{\"steps\": \"" + full.substr(cut) + "\"}") << k;
    EXPECT_EQ(call_ids.size(), 1U) << k;
    EXPECT_EQ(finish, "tool_calls") << k;
  }
}

TEST(gateway_resume_chain, breaks_chained_across_three_upstreams) {
  auto a = start_mock({"--faults", "die_after=3"});
  auto b = start_mock({"--faults", "die_after=4"});
  auto c = start_mock();
  auto gw = start_gateway("[[upstreams]]\nname = \"a\"\nurl = \"" + a.url() + "\"\npriority = 0\n"
                          "[[upstreams]]\nname = \"b\"\nurl = \"" + b.url() + "\"\npriority = 1\n"
                          "[[upstreams]]\nname = \"c\"\nurl = \"" + c.url() + "\"\npriority = 2\n");
  const auto chat = chat_body("chain", true);
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat);
  expect_one_unbroken_stream(sse_events(r.body), expected_answer(chat, true), "chat chain");
  EXPECT_EQ(mock_stat(b.port, "continuations"), 1U);
  EXPECT_EQ(mock_stat(c.port, "continuations"), 1U);
  auto line = gw.proc->wait_for_output(R"("attempts":3,"resumes":2,"upstreams":["a","b","c"])");
  ASSERT_TRUE(line);
  // Each resume is logged: why, from where to where, what was carried over, the client's gap.
  auto log = json::parse(*line).as_object();
  const auto& resumes = log["resume_log"].as_array();
  ASSERT_EQ(resumes.size(), 2U);
  EXPECT_EQ(resumes[0].as_object().at("from").as_string(), "a");
  EXPECT_EQ(resumes[0].as_object().at("to").as_string(), "b");
  EXPECT_EQ(resumes[0].as_object().at("carried_tokens").to_number<int>(), 3);
  EXPECT_EQ(resumes[1].as_object().at("from").as_string(), "b");
  EXPECT_EQ(resumes[1].as_object().at("to").as_string(), "c");
  EXPECT_EQ(resumes[1].as_object().at("carried_tokens").to_number<int>(), 7);
  EXPECT_GE(resumes[1].as_object().at("gap_ms").to_number<double>(), 0.0);
  EXPECT_NE(std::string(resumes[0].as_object().at("cause").as_string()).find("connection broke"),
            std::string::npos);
  // And in the metrics: by cause, upstream left and upstream joined; tokens carried; the gap.
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_stream_resumes_total{cause="reset",from="a",to="b"})"), 1U);
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_stream_resumes_total{cause="reset",from="b",to="c"})"), 1U);
  EXPECT_EQ(metric_value(gw.admin_port, "nines_stream_resume_carried_tokens_total"), 3U + 7U);
  EXPECT_EQ(metric_value(gw.admin_port, "nines_stream_resume_gap_seconds_count"), 2U);
}

TEST(gateway_resume_chain, resumes_exhausted_end_with_stream_incomplete) {
  auto only = start_mock({"--faults", "die_after=2"});
  auto gw = start_gateway(upstreams_toml({only.url()}) + "\n[retry]\nmax_resumes = 2\n");
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", true));
  auto events = sse_events(r.body);
  // Two tokens from the first attempt and from each of two continuations on the same upstream.
  std::vector<core::sse_event> content(events.begin(), events.end() - 1);
  const auto sent = stream_text(content);
  EXPECT_FALSE(sent.empty());
  EXPECT_TRUE(expected_answer(chat_body("x", true), true).starts_with(sent));
  auto last = json::parse(events.back().data).as_object();
  EXPECT_EQ(last["error"].as_object()["type"].as_string(), "stream_incomplete");
  EXPECT_NE(std::string(last["error"].as_object()["message"].as_string()).find("resumes exhausted"),
            std::string::npos);
  EXPECT_EQ(mock_stat(only.port, "continuations"), 2U);
}

}  // namespace
}  // namespace nines::test
