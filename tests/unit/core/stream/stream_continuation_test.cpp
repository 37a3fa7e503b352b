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
      true, p, resume_mode::continue_message, reasoning_resume::think_tags, why);
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
                                 resume_mode::prefill, reasoning_resume::think_tags, why);
  ASSERT_TRUE(body);
  EXPECT_FALSE(json::parse(*body).as_object().contains("continue_final_message"));
  EXPECT_FALSE(build_continuation(R"({"messages":[]})", true, p, resume_mode::none, reasoning_resume::think_tags, why));
  EXPECT_NE(why.find("resume is off"), std::string::npos);
}

TEST(stream_continuation, completion_prompt_gets_the_sent_text_and_echo_is_dropped) {
  const auto p = progress_after({"x ", "y "});
  std::string why;
  auto body = build_continuation(R"({"prompt":"Say:","echo":true,"max_completion_tokens":2})",
                                 false, p, resume_mode::continue_message, reasoning_resume::think_tags, why);
  ASSERT_TRUE(body);
  auto o = json::parse(*body).as_object();
  EXPECT_EQ(o["prompt"].as_string(), "Say:x y ");
  EXPECT_FALSE(o.contains("echo"));
  EXPECT_EQ(o["max_completion_tokens"].to_number<int>(), 1);  // never below one
}

// A reasoning server's chunk: the thought in either field name.
stream_chunk thought_chunk(const char* text, const char* field = "reasoning_content") {
  return read_stream_chunk(std::string(R"({"id":"orig","created":42,"model":"r1","choices":[{"index":0,"delta":{")") +
                           field + R"(":")" + text + R"("},"finish_reason":null}]})");
}

TEST(stream_continuation, the_thought_is_read_apart_from_the_answer_in_either_field) {
  auto a = thought_chunk("hmm ");
  EXPECT_EQ(a.reasoning, "hmm ");
  EXPECT_EQ(a.text, "");
  EXPECT_EQ(a.reasoning_fields, reasoning_content_field);
  auto b = thought_chunk("so ", "reasoning");
  EXPECT_EQ(b.reasoning, "so ");
  EXPECT_EQ(b.reasoning_fields, reasoning_field);
  // Both names with one text (a server keeping the old name too) is one thought; two texts are
  // refused rather than guessed between.
  auto both = read_stream_chunk(
      R"({"choices":[{"index":0,"delta":{"reasoning_content":"x ","reasoning":"x "}}]})");
  EXPECT_EQ(both.reasoning, "x ");
  EXPECT_FALSE(both.ambiguous_reasoning);
  EXPECT_TRUE(read_stream_chunk(
                  R"({"choices":[{"index":0,"delta":{"reasoning_content":"x ","reasoning":"y "}}]})")
                  .ambiguous_reasoning);
}

TEST(stream_continuation, a_break_in_the_thought_continues_inside_think_tags) {
  stream_progress p;
  p.record(thought_chunk("first "));
  p.record(thought_chunk("second "));
  EXPECT_EQ(p.tokens_produced(), 2U);
  std::string why;
  auto body = build_continuation(
      R"({"max_tokens":10,"messages":[{"role":"user","content":"hi"}]})", true, p,
      resume_mode::continue_message, reasoning_resume::think_tags, why);
  ASSERT_TRUE(body) << why;
  auto o = json::parse(*body).as_object();
  EXPECT_EQ(o["messages"].as_array()[1].as_object()["content"].as_string(), "<think>first second ");
  EXPECT_EQ(o["max_tokens"].to_number<int>(), 8);  // the thought's tokens count too
  // After the answer began: the whole thought, closed, then the answer so far.
  stream_chunk answer;
  answer.text = "yes ";
  p.record(answer);
  body = build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                            resume_mode::continue_message, reasoning_resume::think_tags, why);
  ASSERT_TRUE(body) << why;
  o = json::parse(*body).as_object();
  EXPECT_EQ(o["messages"].as_array()[1].as_object()["content"].as_string(),
            "<think>first second </think>yes ");
}

// For templates whose generation prompt already opened the thought (DeepSeek-R1, QwQ on SGLang),
// the opening tag is not repeated.
TEST(stream_continuation, opened_think_carries_the_thought_without_its_opening_tag) {
  stream_progress p;
  p.record(thought_chunk("r1 "));
  EXPECT_EQ(produced_text(p, reasoning_resume::opened_think), "r1 ");
  stream_chunk answer;
  answer.text = "a ";
  p.record(answer);
  EXPECT_EQ(produced_text(p, reasoning_resume::opened_think), "r1 </think>a ");
  EXPECT_EQ(produced_text(p, reasoning_resume::think_tags), "<think>r1 </think>a ");
  EXPECT_EQ(produced_text(p, reasoning_resume::think_tags_newline), "<think>\nr1 </think>a ");
  std::string why;
  auto body = build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                                 resume_mode::continue_message, reasoning_resume::opened_think, why);
  ASSERT_TRUE(body) << why;
  EXPECT_EQ(json::parse(*body).as_object()["messages"].as_array()[1].as_object()["content"].as_string(),
            "r1 </think>a ");
}

TEST(stream_continuation, reasoning_resume_none_refuses_once_the_thought_reached_the_client) {
  stream_progress p;
  std::string why;
  // No thought sent yet: nothing to carry, an ordinary continuation.
  stream_chunk answerless;
  answerless.id = "orig";
  p.record(answerless);
  EXPECT_TRUE(build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                                 resume_mode::continue_message, reasoning_resume::none, why));
  p.record(thought_chunk("t "));
  EXPECT_FALSE(build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                                  resume_mode::continue_message, reasoning_resume::none, why));
  EXPECT_NE(why.find("reasoning_resume"), std::string::npos) << why;
}

TEST(stream_continuation, a_thought_after_the_answer_began_is_not_continued) {
  stream_progress p;
  stream_chunk answer;
  answer.text = "a ";
  p.record(answer);
  p.record(thought_chunk("late "));
  std::string why;
  EXPECT_FALSE(build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                                  resume_mode::continue_message, reasoning_resume::think_tags, why));
  EXPECT_NE(why.find("reasoning after the answer"), std::string::npos) << why;
}

// The continuation's parser sees only its own output: it may call the rest of an answer
// "reasoning" (no "</think>" in what it generated) or leave the tag in the thought. The client
// gets each token in the field the uninterrupted stream would have used.
TEST(stream_continuation, continuation_deltas_go_back_to_the_fields_the_client_expects) {
  stream_progress p;
  p.record(thought_chunk("t1 ", "reasoning"));
  const auto delta_of = [](const std::optional<std::string>& text) {
    return json::parse(*text).as_object()["choices"].as_array()[0].as_object()["delta"].as_object();
  };
  // Still thinking: a thought stays a thought, under the field name the client saw.
  auto d = delta_of(rewrite_continuation_chunk(
      R"({"choices":[{"index":0,"delta":{"reasoning_content":"t2 "},"finish_reason":null}]})", p));
  EXPECT_EQ(d["reasoning"].as_string(), "t2 ");
  EXPECT_FALSE(d.contains("reasoning_content"));
  // A tag left in: split there.
  d = delta_of(rewrite_continuation_chunk(
      R"({"choices":[{"index":0,"delta":{"reasoning":"t3 </think>a1 "},"finish_reason":null}]})", p));
  EXPECT_EQ(d["reasoning"].as_string(), "t3 ");
  EXPECT_EQ(d["content"].as_string(), "a1 ");
  // Once the answer began, "reasoning" from the continuation is answer.
  stream_chunk answer;
  answer.text = "a1 ";
  p.record(answer);
  d = delta_of(rewrite_continuation_chunk(
      R"({"choices":[{"index":0,"delta":{"reasoning_content":"a2 "},"finish_reason":null}]})", p));
  EXPECT_EQ(d["content"].as_string(), "a2 ");
  EXPECT_FALSE(d.contains("reasoning_content"));
  EXPECT_FALSE(d.contains("reasoning"));
}

// A text field given twice would be joined by the reader and shown once by a client: which one
// is not guessed, the event is malformed.
TEST(stream_continuation, a_repeated_text_field_makes_the_event_malformed) {
  EXPECT_FALSE(read_stream_chunk(
                   R"({"choices":[{"index":0,"delta":{"content":"a","content":"b"}}]})")
                   .valid);
  EXPECT_FALSE(read_stream_chunk(
                   R"({"choices":[{"index":0,"delta":{"reasoning_content":"a","reasoning_content":"b"}}]})")
                   .valid);
  EXPECT_FALSE(read_stream_chunk(R"({"choices":[{"index":0,"text":"a","text":"b"}]})").valid);
  // The same key in different objects is fine.
  EXPECT_TRUE(read_stream_chunk(
                  R"({"choices":[{"index":0,"delta":{"content":"a"},"logprobs":{"content":[]}}]})")
                  .valid);
}

TEST(stream_continuation, a_closing_tag_alone_ends_the_thought) {
  stream_progress p;
  p.record(thought_chunk("t "));
  // The tag came as a delta of its own: nothing to send, but what follows is answer, even if
  // the server's parser goes on calling it reasoning.
  EXPECT_FALSE(rewrite_continuation_chunk(
      R"({"choices":[{"index":0,"delta":{"reasoning_content":"</think>"},"finish_reason":null}]})", p));
  EXPECT_TRUE(p.thought_closed);
  auto after = rewrite_continuation_chunk(
      R"({"choices":[{"index":0,"delta":{"reasoning_content":"a "},"finish_reason":null}]})", p);
  ASSERT_TRUE(after);
  auto d = json::parse(*after).as_object()["choices"].as_array()[0].as_object()["delta"].as_object();
  EXPECT_EQ(d["content"].as_string(), "a ");
  EXPECT_FALSE(d.contains("reasoning_content"));
}

TEST(stream_continuation, a_request_with_a_number_json_cannot_hold_is_not_continued) {
  stream_progress p;
  stream_chunk c;
  c.text = "a ";
  p.record(c);
  std::string why;
  EXPECT_FALSE(build_continuation(R"({"messages":[{"role":"user","content":"hi"}],"temperature":1e999})",
                                  true, p, resume_mode::continue_message,
                                  reasoning_resume::think_tags, why));
}

TEST(stream_continuation, tool_calls_are_not_continued) {
  stream_progress p;
  stream_chunk c;
  c.tool_calls = true;
  p.record(c);
  std::string why;
  EXPECT_FALSE(build_continuation(R"({"messages":[{"role":"user","content":"hi"}]})", true, p,
                                  resume_mode::continue_message, reasoning_resume::think_tags, why));
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
                                     resume_mode::continue_message, reasoning_resume::think_tags, why));
}

}  // namespace
}  // namespace nines::core
