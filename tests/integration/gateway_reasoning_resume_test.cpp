// Unbroken streams for reasoning models: a server with a reasoning parser streams the thought in
// `delta.reasoning_content` (or `delta.reasoning`) before the answer in `delta.content`. A break
// anywhere, in the thought or in the answer, is continued so that the client receives every
// thought token and every answer token exactly once, each in the field it belongs to.

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <set>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

constexpr std::size_t thought_tokens = 10;
constexpr std::size_t answer_tokens = 24;

struct stream_parts {
  std::string thought;
  std::string answer;
  int roles = 0;
  int finishes = 0;
  bool done = false;
  std::optional<std::string> error_type;
  std::set<std::string> reasoning_fields;  // the delta field names the thought came in
};

stream_parts read_parts(const std::string& body) {
  stream_parts p;
  const auto events = sse_events(body);
  p.thought = stream_thought(events);
  for (const auto& e : events) {
    if (e.data == "[DONE]") {
      p.done = true;
      continue;
    }
    auto o = json::parse(e.data).as_object();
    if (const auto* err = o.if_contains("error")) {
      p.error_type = std::string(err->as_object().at("type").as_string());
      continue;
    }
    for (const auto& c : o["choices"].as_array()) {
      const auto& co = c.as_object();
      const auto& d = co.at("delta").as_object();
      if (d.contains("role")) {
        ++p.roles;
      }
      for (const char* f : {"reasoning_content", "reasoning"}) {
        if (d.contains(f)) {
          p.reasoning_fields.insert(f);
        }
      }
      if (const auto* t = d.if_contains("content"); t && t->is_string()) {
        p.answer += t->as_string();
      }
      if (!co.at("finish_reason").is_null()) {
        ++p.finishes;
      }
    }
  }
  return p;
}

// Two reasoning upstreams: the first (faults set per case) is always tried first, the second
// continues. `field` is the first's reasoning field, `continues_field` the second's.
class gateway_reasoning_resume : public ::testing::Test {
 protected:
  void start(const std::string& field = "reasoning_content",
             const std::string& continues_field = "reasoning_content",
             const std::string& upstream_extra = {}) {
    const std::string thought = std::to_string(thought_tokens);
    breaking_ = start_mock({"--thought-tokens", thought, "--reasoning-field", field});
    healthy_ = start_mock({"--thought-tokens", thought, "--reasoning-field", continues_field});
    gw_ = start_gateway(breaks_then_continues_toml(breaking_.url(), healthy_.url(), upstream_extra),
                        {"--access-log", "stdout"});
  }
  void set_fault(const std::string& kind, std::size_t k) {
    const std::string faults = "{\"" + kind + "\":" + std::to_string(k) + "}";
    ASSERT_EQ(http_call(breaking_.port, "POST", "/mock/faults", faults).status, 200U);
  }
  server breaking_, healthy_, gw_;
};

// The issue's own case: ten thought deltas, a break after five. Before this was built the client
// got the first five twice (the gateway sent the continuation nothing of the thought), and the
// access log said "ok".
TEST_F(gateway_reasoning_resume, a_break_in_the_thought_never_repeats_it) {
  start();
  set_fault("die_after", 5);
  const auto chat = chat_body("think then answer", true);
  auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
  ASSERT_EQ(r.status, 200U);
  const auto want = expected_output(chat, core::mock_api::chat, thought_tokens);
  const auto got = read_parts(r.body);
  EXPECT_EQ(got.thought, want.thought);
  EXPECT_EQ(got.answer, want.answer);
  EXPECT_TRUE(got.done);
  // The log tells what was carried: five thought tokens.
  auto line = gw_.proc->wait_for_output(R"("resumes":1)");
  ASSERT_TRUE(line);
  auto log = json::parse(*line).as_object();
  EXPECT_EQ(log["outcome"].as_string(), "ok");
  EXPECT_EQ(log["resume_log"].as_array()[0].as_object().at("carried_tokens").to_number<int>(), 5);
}

// Every break position across the thought and the answer, for each kind of break.
TEST_F(gateway_reasoning_resume, every_break_position_and_kind_gives_the_exact_thought_and_answer) {
  start();
  const std::size_t emissions = thought_tokens + answer_tokens;
  for (const std::string kind : {"die_after", "cut_after", "malformed_after"}) {
    for (std::size_t k = 0; k < emissions; ++k) {
      set_fault(kind, k);
      const auto chat = chat_body("position " + std::to_string(k), true);
      auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
      ASSERT_EQ(r.status, 200U);
      const auto want = expected_output(chat, core::mock_api::chat, thought_tokens);
      const auto got = read_parts(r.body);
      const std::string what = kind + "=" + std::to_string(k);
      EXPECT_EQ(got.thought, want.thought) << what;
      EXPECT_EQ(got.answer, want.answer) << what;
      EXPECT_EQ(got.roles, 1) << what;
      EXPECT_EQ(got.finishes, 1) << what;
      EXPECT_TRUE(got.done) << what;
      EXPECT_FALSE(got.error_type) << what;
    }
  }
  // Every case was a real continuation: even a break before the first token came after the
  // role chunk had reached the client.
  EXPECT_EQ(mock_stat(healthy_.port, "continuations"), 3U * emissions);
}

TEST_F(gateway_reasoning_resume, a_stall_in_the_thought_or_the_answer_is_continued) {
  start();
  for (std::size_t k : {3U, 10U, 20U}) {
    set_fault("stall_after", k);
    const auto chat = chat_body("stall " + std::to_string(k), true);
    auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
    const auto want = expected_output(chat, core::mock_api::chat, thought_tokens);
    const auto got = read_parts(r.body);
    EXPECT_EQ(got.thought, want.thought) << k;
    EXPECT_EQ(got.answer, want.answer) << k;
    EXPECT_TRUE(got.done) << k;
  }
}

// A fleet whose servers name the field differently: the client sees the thought under the name
// its stream began with, never both.
TEST_F(gateway_reasoning_resume, the_client_keeps_the_field_name_its_stream_began_with) {
  start("reasoning", "reasoning_content");
  for (std::size_t k : {4U, 15U}) {
    set_fault("die_after", k);
    const auto chat = chat_body("names " + std::to_string(k), true);
    auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
    const auto want = expected_output(chat, core::mock_api::chat, thought_tokens);
    const auto got = read_parts(r.body);
    EXPECT_EQ(got.thought, want.thought) << k;
    EXPECT_EQ(got.answer, want.answer) << k;
    EXPECT_EQ(got.reasoning_fields, std::set<std::string>{"reasoning"}) << k;
  }
}

TEST_F(gateway_reasoning_resume, usage_counts_the_thought_and_max_tokens_shrinks_by_it) {
  start();
  set_fault("die_after", 6);
  // 16 tokens in all: ten of thought and six of answer; six reached the client before the break.
  const auto chat =
      chat_body("usage", true, R"("stream_options":{"include_usage":true},"max_tokens":16)");
  auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
  const auto events = sse_events(r.body);
  const auto want = expected_output(chat, core::mock_api::chat, thought_tokens);
  const auto got = read_parts(r.body);
  EXPECT_EQ(got.thought, want.thought);
  EXPECT_EQ(got.answer, want.answer);
  ASSERT_GE(events.size(), 2U) << r.body;
  auto usage = json::parse(events[events.size() - 2].data).as_object()["usage"].as_object();
  EXPECT_EQ(usage["completion_tokens"].to_number<int>(), 16);
  EXPECT_EQ(usage["total_tokens"].to_number<int>(),
            usage["prompt_tokens"].to_number<int>() + usage["completion_tokens"].to_number<int>());
}

// With reasoning_resume = "none" (a family whose template cannot take a thought back), a break
// after the thought reached the client ends with the explicit signal, never a duplicate; a break
// before any of it did is continued as any stream is.
TEST_F(gateway_reasoning_resume, reasoning_resume_none_ends_with_the_explicit_signal) {
  start("reasoning_content", "reasoning_content", "reasoning_resume = \"none\"\n");
  set_fault("die_after", 5);
  const auto chat = chat_body("no resume", true);
  auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
  const auto got = read_parts(r.body);
  const auto want = expected_output(chat, core::mock_api::chat, thought_tokens);
  EXPECT_TRUE(want.thought.starts_with(got.thought));
  EXPECT_LT(got.thought.size(), want.thought.size());
  EXPECT_FALSE(got.done);
  EXPECT_EQ(got.error_type, "stream_incomplete");
  auto line = gw_.proc->wait_for_output(R"("outcome":"stream_incomplete")");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("reasoning_resume"), std::string::npos) << *line;
  EXPECT_EQ(mock_stat(healthy_.port, "continuations") + mock_stat(breaking_.port, "continuations"),
            0U);

  set_fault("die_after", 0);
  const auto retried = chat_body("retried", true);
  const auto whole = read_parts(http_call(gw_.port, "POST", "/v1/chat/completions", retried).body);
  const auto full = expected_output(retried, core::mock_api::chat, thought_tokens);
  EXPECT_EQ(whole.thought, full.thought);
  EXPECT_EQ(whole.answer, full.answer);
  EXPECT_TRUE(whole.done);
}

// Tool-call holding holds with a thought: a break in the thought, the content or inside the call
// gives the client the thought, the content and one whole call, once each.
TEST_F(gateway_reasoning_resume, a_tool_call_after_a_thought_is_never_half_delivered) {
  start();
  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"tap","parameters":{"type":"object"}}}])";
  const auto split = core::plan_mock_tool_call(0, answer_tokens).split;
  for (std::size_t k = 0; k < thought_tokens + split + core::mock_tool_call::pieces; ++k) {
    set_fault("die_after", k);
    const auto chat = chat_body("tool " + std::to_string(k), true, tools);
    auto r = http_call(gw_.port, "POST", "/v1/chat/completions", chat);
    const auto got = read_parts(r.body);
    std::string arguments;
    int call_starts = 0;
    for (const auto& e : sse_events(r.body)) {
      if (e.data == "[DONE]") {
        continue;
      }
      auto o = json::parse(e.data).as_object();
      const auto& delta = o["choices"].as_array()[0].as_object().at("delta").as_object();
      if (const auto* calls = delta.if_contains("tool_calls")) {
        const auto& call = calls->as_array()[0].as_object();
        call_starts += call.contains("id") ? 1 : 0;
        arguments += call.at("function").as_object().at("arguments").as_string();
      }
    }
    core::mock_plan plan;
    std::string error;
    ASSERT_TRUE(core::plan_mock_answer(json::parse(chat).as_object(), core::mock_api::chat,
                                       answer_tokens, thought_tokens, plan, error));
    const std::string what = "die_after=" + std::to_string(k);
    EXPECT_EQ(got.thought, expected_output(chat, core::mock_api::chat, thought_tokens).thought) << what;
    EXPECT_EQ(got.answer, core::mock_answer_text(plan.seed, 0, split)) << what;
    EXPECT_EQ(arguments, core::plan_mock_tool_call(plan.seed, answer_tokens).arguments) << what;
    EXPECT_EQ(call_starts, 1) << what;
    EXPECT_TRUE(got.done) << what;
  }
}

// The journal holds with a thought: a client that dropped during the thought gets the rest with
// Last-Event-ID, and the whole equals the uninterrupted thought and answer.
TEST(gateway_reasoning_journal, a_dropped_client_gets_the_rest_of_the_thought_and_the_answer) {
  auto mock = start_mock({"--thought-tokens", std::to_string(thought_tokens), "--faults", "tpot_ms=20"});
  auto gw = start_gateway(upstreams_toml({mock.url()}) + "\n[journal]\nmode = \"keyed\"\n");
  const auto chat = chat_body("journaled thought", true);
  std::vector<core::sse_event> first;
  {
    stream_reader reader(gw.port, "/v1/chat/completions", chat, true, {{"X-Request-Id", "step-5"}});
    ASSERT_TRUE(reader.read_events(4));  // the role and three thought tokens
    first = reader.events();
  }
  auto rest = http_call(gw.port, "POST", "/v1/chat/completions", chat,
                        {{"X-Request-Id", "step-5"}, {"Last-Event-ID", *first.back().id}});
  ASSERT_EQ(rest.status, 200U);
  std::string whole;
  for (const auto& e : first) {
    core::append_sse_event(whole, e);
  }
  whole += rest.body;
  const auto got = read_parts(whole);
  const auto want = expected_output(chat, core::mock_api::chat, thought_tokens);
  EXPECT_EQ(got.thought, want.thought);
  EXPECT_EQ(got.answer, want.answer);
  EXPECT_TRUE(got.done);
  EXPECT_EQ(mock_stat(mock.port, "streams"), 1U);
}

}  // namespace
}  // namespace nines::test
