#include "core/stream/stream_continuation.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace nines::core {
namespace {

namespace json = boost::json;

TEST(stream_continuation, reads_what_a_chunk_says) {
  auto c = read_stream_chunk(
      R"({"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"hé "},"finish_reason":null}]})");
  EXPECT_TRUE(c.valid);
  EXPECT_EQ(c.id, "c1");
  EXPECT_EQ(c.created, 5);
  EXPECT_EQ(c.text, "hé ");
  EXPECT_TRUE(c.has_role);
  EXPECT_FALSE(c.finish_reason);
  auto done = read_stream_chunk(R"({"choices":[{"index":0,"text":"x","finish_reason":"stop"}]})");
  EXPECT_EQ(done.text, "x");
  EXPECT_EQ(done.finish_reason, "stop");
  auto tools = read_stream_chunk(
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a"}}]}}]})");
  EXPECT_TRUE(tools.tool_calls);
  EXPECT_TRUE(read_stream_chunk(R"({"choices":[{"index":1,"delta":{}}]})").other_choice);
  EXPECT_TRUE(read_stream_chunk(R"({"choices":[],"usage":{"total_tokens":3}})").has_usage);
  EXPECT_TRUE(read_stream_chunk(R"({"error":{"message":"x"}})").is_error);
  EXPECT_FALSE(read_stream_chunk("{\"id\": broken").valid);
}

stream_progress progress_after(std::initializer_list<const char*> texts) {
  stream_progress p;
  for (const char* t : texts) {
    stream_chunk c;
    c.id = "orig";
    c.created = 42;
    c.model = "glm";
    c.text = t;
    p.record(c);
  }
  return p;
}

TEST(stream_continuation, chat_continuation_appends_the_sent_text_with_vllm_flags) {
  const auto p = progress_after({"the ", "agent "});
  std::string why;
  auto body = build_continuation(
      R"({"model":"glm","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"hi"}]})",
      true, p, resume_mode::continue_message, why);
  ASSERT_TRUE(body) << why;
  auto o = json::parse(*body).as_object();
  const auto& messages = o["messages"].as_array();
  ASSERT_EQ(messages.size(), 2U);
  EXPECT_EQ(messages[1].as_object().at("role").as_string(), "assistant");
  EXPECT_EQ(messages[1].as_object().at("content").as_string(), "the agent ");
  EXPECT_EQ(o["continue_final_message"].as_bool(), true);
  EXPECT_EQ(o["add_generation_prompt"].as_bool(), false);
  EXPECT_EQ(o["max_tokens"].to_number<int>(), 8);
  EXPECT_TRUE(o["stream"].as_bool());
}

TEST(stream_continuation, prefill_omits_the_flags_and_none_refuses) {
  const auto p = progress_after({"a "});
  std::string why;
  auto body = build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                                 resume_mode::prefill, why);
  ASSERT_TRUE(body);
  EXPECT_FALSE(json::parse(*body).as_object().contains("continue_final_message"));
  EXPECT_FALSE(build_continuation(R"({"messages":[]})", true, p, resume_mode::none, why));
  EXPECT_NE(why.find("resume is off"), std::string::npos);
}

TEST(stream_continuation, completion_prompt_gets_the_sent_text_and_echo_is_dropped) {
  const auto p = progress_after({"x ", "y "});
  std::string why;
  auto body = build_continuation(R"({"prompt":"Say:","echo":true,"max_completion_tokens":2})",
                                 false, p, resume_mode::continue_message, why);
  ASSERT_TRUE(body);
  auto o = json::parse(*body).as_object();
  EXPECT_EQ(o["prompt"].as_string(), "Say:x y ");
  EXPECT_FALSE(o.contains("echo"));
  EXPECT_EQ(o["max_completion_tokens"].to_number<int>(), 1);  // never below one
}

TEST(stream_continuation, tool_calls_are_not_continued) {
  stream_progress p;
  stream_chunk c;
  c.tool_calls = true;
  p.record(c);
  std::string why;
  EXPECT_FALSE(build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                                  resume_mode::continue_message, why));
  EXPECT_NE(why.find("tool calls"), std::string::npos);
}

TEST(stream_continuation, rewritten_chunks_carry_the_original_identity_without_a_role) {
  auto p = progress_after({"a "});
  EXPECT_FALSE(rewrite_continuation_chunk(
      R"({"id":"new","created":1,"model":"m2","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]})",
      p));
  auto text = rewrite_continuation_chunk(
      R"({"id":"new","created":1,"model":"m2","choices":[{"index":0,"delta":{"content":"b "},"finish_reason":null}]})",
      p);
  ASSERT_TRUE(text);
  auto o = json::parse(*text).as_object();
  EXPECT_EQ(o["id"].as_string(), "orig");
  EXPECT_EQ(o["created"].to_number<int>(), 42);
  EXPECT_EQ(o["model"].as_string(), "glm");
}

TEST(stream_continuation, usage_counts_the_tokens_carried_over) {
  auto p = progress_after({"a ", "b ", "c "});
  p.carried_tokens = 3;
  auto text = rewrite_continuation_chunk(
      R"({"id":"n","choices":[],"usage":{"prompt_tokens":13,"completion_tokens":7,"total_tokens":20}})",
      p);
  ASSERT_TRUE(text);
  auto u = json::parse(*text).as_object()["usage"].as_object();
  EXPECT_EQ(u["prompt_tokens"].to_number<int>(), 10);
  EXPECT_EQ(u["completion_tokens"].to_number<int>(), 10);
  EXPECT_EQ(u["total_tokens"].to_number<int>(), 20);
}

// Found by tests/fuzz/stream_chunk_fuzz.cpp: a count too large for an integer threw from
// boost::json's to_number on the data path.
TEST(stream_continuation, absurd_numbers_from_upstream_do_not_throw) {
  auto p = progress_after({"a "});
  p.carried_tokens = 1;
  EXPECT_NO_THROW({
    auto text = rewrite_continuation_chunk(
        R"({"id":"n","created":1e300,"choices":[],"usage":{"prompt_tokens":44444444444444444444444443,"completion_tokens":4}})",
        p);
    ASSERT_TRUE(text);
  });
  EXPECT_NO_THROW(read_stream_chunk(R"({"created":1.5e300,"choices":[]})"));
  // A number beyond double range cannot be passed on as JSON: the event counts as malformed.
  EXPECT_FALSE(read_stream_chunk(R"({"usage":{"prompt_tokens":3e888888}})").valid);
  std::string why;
  EXPECT_NO_THROW(build_continuation(R"({"prompt":"x","max_tokens":1e400})", false, p,
                                     resume_mode::continue_message, why));
}

}  // namespace
}  // namespace nines::core
