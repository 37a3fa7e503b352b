#include "core/stream/responses_stream.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace nines::core {
namespace {

namespace json = boost::json;

json::object chat_of(const std::string& responses_body) {
  std::string why;
  auto chat = responses_as_chat(responses_body, why);
  EXPECT_TRUE(chat) << why;
  return chat ? json::parse(*chat).as_object() : json::object{};
}

TEST(responses_as_chat, instructions_and_input_become_the_messages_a_chat_request_carries) {
  auto c = chat_of(
      R"({"model":"glm","instructions":"You drive a phone.","input":"open wifi","max_output_tokens":50,"temperature":0,"stream":true,"store":false})");
  EXPECT_EQ(c["model"].as_string(), "glm");
  EXPECT_EQ(c["max_tokens"].to_number<int>(), 50);
  EXPECT_EQ(c["temperature"].to_number<int>(), 0);
  EXPECT_TRUE(c["stream"].as_bool());
  EXPECT_TRUE(c["stream_options"].as_object()["include_usage"].as_bool());
  EXPECT_FALSE(c.contains("store"));
  const auto& m = c["messages"].as_array();
  ASSERT_EQ(m.size(), 2U);
  EXPECT_EQ(m[0].as_object().at("role").as_string(), "system");
  EXPECT_EQ(m[0].as_object().at("content").as_string(), "You drive a phone.");
  EXPECT_EQ(m[1].as_object().at("role").as_string(), "user");
  EXPECT_EQ(m[1].as_object().at("content").as_string(), "open wifi");
}

TEST(responses_as_chat, items_parts_tools_and_formats_have_their_chat_forms) {
  auto c = chat_of(R"({"model":"m","input":[
      {"role":"user","content":[{"type":"input_text","text":"what is on screen?"},
                                {"type":"input_image","image_url":"data:image/png;base64,AAAA","detail":"high"}]},
      {"type":"function_call","call_id":"call_1","name":"tap","arguments":"{\"x\":1}"},
      {"type":"function_call_output","call_id":"call_1","output":"ok"},
      {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Tapped."}]}],
    "tools":[{"type":"function","name":"tap","description":"tap the screen","parameters":{"type":"object"}}],
    "tool_choice":{"type":"function","name":"tap"},
    "text":{"format":{"type":"json_schema","name":"step","schema":{"type":"object"},"strict":true}},
    "reasoning":{"effort":"low"}})");
  const auto& m = c["messages"].as_array();
  ASSERT_EQ(m.size(), 4U);
  const auto& parts = m[0].as_object().at("content").as_array();
  EXPECT_EQ(parts[0].as_object().at("type").as_string(), "text");
  EXPECT_EQ(parts[1].as_object().at("image_url").as_object().at("url").as_string(),
            "data:image/png;base64,AAAA");
  EXPECT_EQ(parts[1].as_object().at("image_url").as_object().at("detail").as_string(), "high");
  const auto& call = m[1].as_object().at("tool_calls").as_array()[0].as_object();
  EXPECT_EQ(call.at("id").as_string(), "call_1");
  EXPECT_EQ(call.at("function").as_object().at("arguments").as_string(), "{\"x\":1}");
  EXPECT_EQ(m[2].as_object().at("role").as_string(), "tool");
  EXPECT_EQ(m[2].as_object().at("tool_call_id").as_string(), "call_1");
  EXPECT_EQ(m[3].as_object().at("content").as_array()[0].as_object().at("text").as_string(),
            "Tapped.");
  EXPECT_EQ(c["tools"].as_array()[0].as_object().at("function").as_object().at("name").as_string(),
            "tap");
  EXPECT_EQ(c["tool_choice"].as_object()["function"].as_object()["name"].as_string(), "tap");
  EXPECT_EQ(c["response_format"].as_object()["json_schema"].as_object()["name"].as_string(), "step");
  EXPECT_EQ(c["reasoning_effort"].as_string(), "low");
}

// What a chat request cannot repeat exactly is refused, never approximated.
TEST(responses_as_chat, server_side_state_builtin_tools_and_unknown_fields_are_refused) {
  for (const char* body : {
           R"({"input":"x","previous_response_id":"resp_1"})",
           R"({"input":"x","conversation":"conv_1"})",
           R"({"input":"x","background":true})",
           R"({"input":"x","truncation":"auto"})",
           R"({"input":"x","tools":[{"type":"web_search"}]})",
           R"({"input":"x","a_field_from_next_year":1})",
           R"({"input":[{"type":"reasoning","summary":[]}]})",
           R"({"input":[{"role":"user","content":[{"type":"input_image","file_id":"f"}]}]})",
           R"({"input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]})",
           R"({"input":[{"role":"robot","content":"x"}]})",
           R"({"model":"m"})",
           R"([1,2])",
       }) {
    std::string why;
    EXPECT_FALSE(responses_as_chat(body, why)) << body;
    EXPECT_FALSE(why.empty()) << body;
  }
}

TEST(responses_as_chat, what_would_change_the_meaning_is_refused_or_made_explicit) {
  // A function tool is strict unless it says otherwise in the Responses API; not in chat.
  auto c = chat_of(R"({"input":"x","tools":[{"type":"function","name":"tap"}]})");
  EXPECT_TRUE(c["tools"].as_array()[0].as_object().at("function").as_object().at("strict").as_bool());
  for (const char* body : {
           R"({"input":[{"type":"function_call","name":"tap","arguments":"{}"}]})",
           R"({"input":[{"type":"function_call_output","output":"ok"}]})",
           R"({"input":[{"role":"user","content":[{"type":"input_text"}]}]})",
           R"({"input":"x","tools":[{"type":"function","name":"tap","cache":true}]})",
           R"({"input":"x","include":["message.output_text.logprobs"]})",
           R"({"input":"x","temperature":1e999})",
       }) {
    std::string why;
    EXPECT_FALSE(responses_as_chat(body, why)) << body;
  }
  std::string why;
  EXPECT_TRUE(responses_as_chat(R"({"input":"x","include":["reasoning.encrypted_content"]})", why))
      << why;
}

json::object event(const std::string& text) { return json::parse(text).as_object(); }

// The start of a stream with a thought: created, a reasoning item, two thought deltas.
void record_thinking(responses_progress& r, stream_progress& chat) {
  for (const char* e : {
           R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_abc","object":"response","status":"in_progress","output":[]}})",
           R"({"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[],"content":[],"status":"in_progress"}})",
           R"({"type":"response.content_part.added","sequence_number":2,"item_id":"rs_1","output_index":0,"content_index":0,"part":{"type":"reasoning_text","text":""}})",
           R"({"type":"response.reasoning_text.delta","sequence_number":3,"item_id":"rs_1","output_index":0,"content_index":0,"delta":"t1 "})",
           R"({"type":"response.reasoning_text.delta","sequence_number":4,"item_id":"rs_1","output_index":0,"content_index":0,"delta":"t2 "})",
       }) {
    r.record(event(e), &chat);
  }
}

TEST(responses_progress, follows_the_thought_and_the_answer_as_a_chat_stream_would) {
  responses_progress r;
  stream_progress chat;
  record_thinking(r, chat);
  EXPECT_TRUE(r.created());
  EXPECT_FALSE(r.unsupported());
  EXPECT_EQ(r.last_sequence(), 4);
  EXPECT_EQ(chat.reasoning, "t1 t2 ");
  EXPECT_EQ(chat.reasoning_chunks, 2U);
  EXPECT_FALSE(chat.thought_over());
  r.record(event(R"({"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":{"id":"rs_1","type":"reasoning"}})"),
           &chat);
  EXPECT_TRUE(chat.thought_closed) << "the thought is over once its item is done";
  EXPECT_EQ(produced_text(chat), "<think>t1 t2 </think>");
}

// A continuation's chat chunks become events of the same response: the open reasoning item goes
// on, the answer opens a message (the thought's item closed first), and the end closes it and
// completes the response with every item and the usage.
TEST(responses_progress, a_continuation_goes_on_in_the_same_response) {
  responses_progress r;
  stream_progress chat;
  record_thinking(r, chat);
  std::vector<sse_event> out;
  stream_chunk thought;
  thought.reasoning = "t3 ";
  r.continue_with("{}", thought, out);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].type, "response.reasoning_text.delta");
  auto d = json::parse(out[0].data).as_object();
  EXPECT_EQ(d["sequence_number"].to_number<int>(), 5);
  EXPECT_EQ(d["item_id"].as_string(), "rs_1");
  out.clear();
  stream_chunk answer;
  answer.text = "a1 ";
  r.continue_with("{}", answer, out);
  std::vector<std::string> types;
  for (const auto& e : out) {
    types.push_back(e.type);
  }
  EXPECT_EQ(types, (std::vector<std::string>{
                       "response.reasoning_text.done", "response.content_part.done",
                       "response.output_item.done", "response.output_item.added",
                       "response.content_part.added", "response.output_text.delta"}));
  EXPECT_EQ(json::parse(out[0].data).as_object()["text"].as_string(), "t1 t2 t3 ");
  const auto message = json::parse(out[3].data).as_object();
  EXPECT_EQ(message.at("output_index").to_number<int>(), 1);
  EXPECT_EQ(message.at("item").as_object().at("id").as_string(), "msg_abc_1");
  EXPECT_EQ(json::parse(out.back().data).as_object()["sequence_number"].to_number<int>(), 11);
  out.clear();
  stream_chunk usage;
  usage.has_usage = true;
  r.continue_with(R"({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":4,"total_tokens":11}})",
                  usage, out);
  EXPECT_TRUE(out.empty());
  chat.reasoning_chunks = 3;
  r.complete(chat, out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().type, "response.completed");
  auto done = json::parse(out.back().data).as_object()["response"].as_object();
  EXPECT_EQ(done["id"].as_string(), "resp_abc");
  EXPECT_EQ(done["status"].as_string(), "completed");
  const auto& output = done["output"].as_array();
  ASSERT_EQ(output.size(), 2U);
  EXPECT_EQ(output[0].as_object().at("content").as_array()[0].as_object().at("text").as_string(),
            "t1 t2 t3 ");
  EXPECT_EQ(output[1].as_object().at("content").as_array()[0].as_object().at("text").as_string(),
            "a1 ");
  EXPECT_EQ(done["usage"].as_object()["output_tokens"].to_number<int>(), 4);
  EXPECT_EQ(done["usage"].as_object()["output_tokens_details"].as_object()["reasoning_tokens"]
                .to_number<int>(),
            3);
}

TEST(responses_progress, a_continuations_tool_calls_become_function_call_items_at_the_end) {
  responses_progress r;
  stream_progress chat;
  record_thinking(r, chat);
  std::vector<sse_event> out;
  stream_chunk call;
  call.tool_calls = true;
  r.continue_with(
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_9","function":{"name":"tap","arguments":"{\"x\""}}]}}]})",
      call, out);
  r.continue_with(
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]})",
      call, out);
  EXPECT_TRUE(out.empty()) << "held until the end";
  stream_chunk finish;
  finish.finish_reason = "tool_calls";
  r.continue_with("{}", finish, out);
  r.complete(chat, out);
  bool found = false;
  for (const auto& e : out) {
    if (e.type == "response.function_call_arguments.done") {
      auto o = json::parse(e.data).as_object();
      EXPECT_EQ(o["arguments"].as_string(), "{\"x\":1}");
      found = true;
    }
  }
  EXPECT_TRUE(found);
  auto done = json::parse(out.back().data).as_object()["response"].as_object();
  const auto& last = done["output"].as_array().back().as_object();
  EXPECT_EQ(last.at("type").as_string(), "function_call");
  EXPECT_EQ(last.at("call_id").as_string(), "call_9");
  EXPECT_EQ(last.at("name").as_string(), "tap");
}

TEST(responses_progress, function_call_parts_are_held_until_the_call_is_complete) {
  responses_progress r;
  const auto added = event(R"({"type":"response.output_item.added","output_index":0,"item":{"id":"fc_1","type":"function_call"}})");
  const auto delta = event(R"({"type":"response.function_call_arguments.delta","output_index":0,"delta":"{"})");
  const auto done = event(R"({"type":"response.output_item.done","output_index":0,"item":{"id":"fc_1","type":"function_call"}})");
  const auto next = event(R"({"type":"response.output_text.delta","output_index":1,"delta":"x"})");
  EXPECT_TRUE(r.hold(added));
  EXPECT_TRUE(r.hold(delta));
  EXPECT_FALSE(r.hold(done)) << "the end of the call releases it";
  EXPECT_FALSE(r.hold(next));
  EXPECT_TRUE(r.hold(added));
  r.forget_held_call();  // a break: the client never saw it
  EXPECT_FALSE(r.hold(next));
}

TEST(responses_progress, sequence_numbers_must_count_up_by_one_from_zero) {
  for (std::vector<const char*> events : std::vector<std::vector<const char*>>{
           {R"({"type":"response.created","sequence_number":1,"response":{}})"},
           {R"({"type":"response.created","response":{}})"},
           {R"({"type":"response.created","sequence_number":0,"response":{}})",
            R"({"type":"response.in_progress","sequence_number":2})"},
           {R"({"type":"response.created","sequence_number":0,"response":{}})",
            R"({"type":"response.in_progress","sequence_number":0})"},
           {R"({"type":"response.created","sequence_number":9223372036854775807,"response":{}})"},
       }) {
    responses_progress r;
    for (const char* e : events) {
      r.record(event(e), nullptr);
    }
    EXPECT_TRUE(r.unsupported()) << events.back();
  }
}

TEST(responses_progress, a_thought_after_the_answer_and_events_nines_does_not_follow_are_marked) {
  responses_progress r;
  stream_progress chat;
  record_thinking(r, chat);
  r.record(event(R"({"type":"response.output_item.done","sequence_number":5,"output_index":0,"item":{"id":"rs_1","type":"reasoning"}})"), &chat);
  r.record(event(R"({"type":"response.output_item.added","sequence_number":6,"output_index":1,"item":{"id":"m","type":"message"}})"), &chat);
  EXPECT_FALSE(r.unsupported());
  r.record(event(R"({"type":"response.reasoning_text.delta","sequence_number":7,"output_index":0,"delta":"late"})"), &chat);
  EXPECT_TRUE(r.unsupported());
  responses_progress annotated;
  stream_progress chat2;
  record_thinking(annotated, chat2);
  annotated.record(event(R"({"type":"response.output_text.annotation.added","sequence_number":5})"), &chat2);
  EXPECT_TRUE(annotated.unsupported());
}

// The model ended its message where the client saw it end; a continuation that writes more is
// not spliced in as a second message.
TEST(responses_progress, text_after_a_complete_message_is_not_written) {
  responses_progress r;
  stream_progress chat;
  for (const char* e : {
           R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_x"}})",
           R"({"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"m","type":"message"}})",
           R"({"type":"response.content_part.added","sequence_number":2,"item_id":"m","output_index":0,"content_index":0,"part":{"type":"output_text","text":""}})",
           R"({"type":"response.output_text.delta","sequence_number":3,"item_id":"m","output_index":0,"content_index":0,"delta":"a "})",
           R"({"type":"response.output_text.done","sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"text":"a "})",
           R"({"type":"response.content_part.done","sequence_number":5,"item_id":"m","output_index":0,"content_index":0,"part":{}})",
       }) {
    r.record(event(e), &chat);
  }
  EXPECT_FALSE(r.unsupported());
  std::vector<sse_event> out;
  stream_chunk more;
  more.text = "b ";
  r.continue_with("{}", more, out);
  EXPECT_TRUE(r.unsupported());
  EXPECT_TRUE(out.empty());
}

// What one continuation kept for its end is not carried into the next one.
TEST(responses_progress, a_new_continuation_starts_without_the_last_ones_tool_call_parts) {
  responses_progress r;
  stream_progress chat;
  record_thinking(r, chat);
  std::vector<sse_event> out;
  stream_chunk call;
  call.tool_calls = true;
  r.continue_with(
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_A","function":{"name":"tap","arguments":"{\"x"}}]}}]})",
      call, out);
  r.begin_continuation();
  r.continue_with(
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_B","function":{"name":"tap","arguments":"{}"}}]}}]})",
      call, out);
  r.complete(chat, out);
  auto done = json::parse(out.back().data).as_object()["response"].as_object();
  const auto& last = done["output"].as_array().back().as_object();
  EXPECT_EQ(last.at("call_id").as_string(), "call_B");
  EXPECT_EQ(last.at("arguments").as_string(), "{}");
  // Parts with an index that skips one are refused, not filled in.
  responses_progress gap;
  gap.continue_with(
      R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c","function":{"name":"t","arguments":""}}]}}]})",
      call, out);
  EXPECT_TRUE(gap.unsupported());
}

TEST(responses_progress, what_cannot_be_continued_exactly_is_marked) {
  for (const char* e : {
           R"({"type":"response.output_item.added","output_index":0,"item":{"id":"fc","type":"function_call"}})",
           R"({"type":"response.output_item.added","output_index":0,"item":{"id":"ws","type":"web_search_call"}})",
           R"({"type":"response.output_item.added","output_index":3,"item":{"id":"m","type":"message"}})",
           R"({"type":"response.refusal.delta","output_index":0,"delta":"no"})",
           R"({"type":"response.output_text.delta","output_index":5,"delta":"x"})",
       }) {
    responses_progress r;
    r.record(event(e), nullptr);
    EXPECT_TRUE(r.unsupported()) << e;
  }
  responses_progress twice;
  twice.record(event(R"({"type":"response.output_item.added","output_index":0,"item":{"id":"m1","type":"message"}})"), nullptr);
  twice.record(event(R"({"type":"response.output_item.added","output_index":1,"item":{"id":"m2","type":"message"}})"), nullptr);
  EXPECT_TRUE(twice.unsupported());
}

}  // namespace
}  // namespace nines::core
