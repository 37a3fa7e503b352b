// Hostile streams on the APIs nines continues (reasoning chat, the Responses API): an upstream
// whose events lie, repeat, skip or break. Each case asserts what the client got — one stream it
// can trust, or the explicit incomplete signal, never a silent "completed" — and what the
// upstream received: a continuation carrying exactly what the client was sent, or nothing.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

namespace json = boost::json;

std::string chunked(const std::string& data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

// A streamed reply made of SSE events, cut (a close without the last chunk) unless `end`.
std::string stream_reply(const std::vector<std::string>& events, bool end) {
  std::string out =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
      "Connection: close\r\n\r\n";
  for (const auto& e : events) {
    out += chunked(e);
  }
  if (end) {
    out += "0\r\n\r\n";
  }
  return out;
}

std::string data(const std::string& json_text) { return "data: " + json_text + "\n\n"; }

std::string typed(const std::string& type, const std::string& json_text) {
  return "event: " + type + "\ndata: " + json_text + "\n\n";
}

std::string chat_chunk(const std::string& delta, const std::string& finish = "null") {
  return data(R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":)" +
              delta + R"(,"finish_reason":)" + finish + "}]}");
}

// The continuation every case's upstream gives to a second request: " z" as answer, then the end.
std::string continuation_reply() {
  return stream_reply({chat_chunk(R"({"role":"assistant","content":""})"),
                       chat_chunk(R"({"content":"z "})"), chat_chunk("{}", "\"stop\""),
                       "data: [DONE]\n\n"},
                      true);
}

// The start of a Responses stream with one message item and the answer text `text`.
std::vector<std::string> responses_start(const std::string& text) {
  return {
      typed("response.created",
            R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_h","object":"response","status":"in_progress","output":[]}})"),
      typed("response.output_item.added",
            R"({"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_h","type":"message","role":"assistant","status":"in_progress","content":[]}})"),
      typed("response.content_part.added",
            R"({"type":"response.content_part.added","sequence_number":2,"item_id":"msg_h","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}})"),
      typed("response.output_text.delta",
            R"({"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_h","output_index":0,"content_index":0,"delta":")" +
                text + R"("})"),
  };
}

std::vector<std::string> plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::string responses_request =
    post("/v1/responses", R"({"model":"m","input":"tap","stream":true})");
const std::string chat_request =
    post("/v1/chat/completions",
         R"({"model":"m","stream":true,"messages":[{"role":"user","content":"tap"}]})");

struct stream_case {
  std::string name;
  std::string request;
  std::vector<std::string> events;  // the first upstream reply's events (then a cut)
  bool end = false;                 // the first reply ends its body properly
  std::size_t upstream_requests;    // what the upstream must have received in all
  // What the client must have got, and (when continued) what the continuation carried.
  std::function<void(const std::string& client_body, const std::vector<seen_request>&)> check;
};

std::ostream& operator<<(std::ostream& os, const stream_case& c) { return os << c.name; }

// The last event's data as JSON.
json::object last_event(const std::string& body) {
  const auto events = test::sse_events(body);
  EXPECT_FALSE(events.empty()) << body;
  return events.empty() ? json::object{} : json::parse(events.back().data).as_object();
}

// The final assistant message of a continuation request.
std::string carried(const seen_request& r) {
  auto o = json::parse(r.body).as_object();
  const auto& messages = o.at("messages").as_array();
  return std::string(messages.back().as_object().at("content").as_string());
}

const auto ends_with_the_responses_error = [](const std::string& body,
                                               const std::vector<seen_request>&) {
  const auto end = last_event(body);
  EXPECT_EQ(end.at("type").as_string(), "error") << body;
  EXPECT_EQ(end.at("code").as_string(), "stream_incomplete") << body;
  EXPECT_EQ(body.find("response.completed"), std::string::npos) << body;
};

const auto ends_with_stream_incomplete = [](const std::string& body,
                                             const std::vector<seen_request>&) {
  const auto end = last_event(body);
  EXPECT_EQ(end.at("error").as_object().at("type").as_string(), "stream_incomplete") << body;
  EXPECT_EQ(body.find("[DONE]"), std::string::npos) << body;
};

// Continued through chat, carrying "a ", answered " z": one response, completed with "a z ".
const auto responses_continued = [](const std::string& body, const std::vector<seen_request>& seen) {
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[1].target, "/v1/chat/completions");
  EXPECT_EQ(carried(seen[1]), "a ");
  const auto end = last_event(body);
  EXPECT_EQ(end.at("type").as_string(), "response.completed") << body;
  const auto& output = end.at("response").as_object().at("output").as_array();
  ASSERT_EQ(output.size(), 1U) << body;
  EXPECT_EQ(output[0].as_object().at("content").as_array()[0].as_object().at("text").as_string(),
            "a z ");
  EXPECT_EQ(end.at("response").as_object().at("id").as_string(), "resp_h");
};

std::vector<stream_case> cases() {
  return {
      // The Responses API.
      {"responses_event_not_json", responses_request,
       plus(responses_start("a "), {"data: {\"type\":\"response.output_text.delta\",\n\n"}), false, 2,
       responses_continued},
      {"responses_event_without_type", responses_request,
       plus(responses_start("a "), {data(R"({"sequence_number":4,"delta":"b"})")}), false, 2,
       responses_continued},
      {"responses_upstream_error_event", responses_request,
       plus(responses_start("a "),
            {typed("error", R"({"type":"error","code":"server_error","message":"oom","sequence_number":4})")}),
       false, 2, responses_continued},
      {"responses_plain_close", responses_request, responses_start("a "), true, 2, responses_continued},
      {"responses_sequence_skips", responses_request,
       plus(responses_start("a "),
            {typed("response.output_text.delta",
                   R"({"type":"response.output_text.delta","sequence_number":9,"item_id":"msg_h","output_index":0,"content_index":0,"delta":"b "})")}),
       false, 1, ends_with_the_responses_error},
      {"responses_sequence_at_int64_max", responses_request,
       {typed("response.created",
              R"({"type":"response.created","sequence_number":9223372036854775807,"response":{"id":"r"}})")},
       false, 1, ends_with_the_responses_error},
      {"responses_event_nines_does_not_follow", responses_request,
       plus(responses_start("a "),
            {typed("response.output_text.annotation.added",
                   R"({"type":"response.output_text.annotation.added","sequence_number":4,"output_index":0})")}),
       false, 1, ends_with_the_responses_error},
      {"responses_delta_for_an_item_never_added", responses_request,
       plus(responses_start("a "),
            {typed("response.output_text.delta",
                   R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"x","output_index":7,"delta":"b "})")}),
       false, 1, ends_with_the_responses_error},
      {"responses_events_after_the_end", responses_request,
       plus(responses_start("a "),
            {typed("response.completed",
                   R"({"type":"response.completed","sequence_number":4,"response":{"id":"resp_h","status":"completed","output":[]}})"),
             typed("response.output_text.delta",
                   R"({"type":"response.output_text.delta","sequence_number":5,"item_id":"msg_h","output_index":0,"delta":"late"})")}),
       true, 1,
       [](const std::string& body, const std::vector<seen_request>&) {
         EXPECT_EQ(last_event(body).at("type").as_string(), "response.completed");
         EXPECT_EQ(body.find("late"), std::string::npos) << body;
       }},
      {"responses_half_a_function_call_then_a_cut", responses_request,
       plus(responses_start("a "),
            {typed("response.output_item.added",
                   R"({"type":"response.output_item.added","sequence_number":4,"output_index":1,"item":{"id":"fc","type":"function_call","call_id":"c1","name":"tap","arguments":""}})"),
             typed("response.function_call_arguments.delta",
                   R"({"type":"response.function_call_arguments.delta","sequence_number":5,"item_id":"fc","output_index":1,"delta":"{\"x\":"})")}),
       false, 2,
       [](const std::string& body, const std::vector<seen_request>& seen) {
         // The client never saw the half call; the continuation answered without one.
         EXPECT_EQ(body.find("function_call"), std::string::npos) << body;
         EXPECT_EQ(last_event(body).at("type").as_string(), "response.completed");
         ASSERT_EQ(seen.size(), 2U);
         EXPECT_EQ(carried(seen[1]), "a ");
       }},

      // Chat with a reasoning parser.
      {"chat_text_field_given_twice", chat_request,
       {chat_chunk(R"({"role":"assistant","content":""})"), chat_chunk(R"({"content":"a "})"),
        chat_chunk(R"({"content":"b ","content":"c "})")},
       false, 2,
       [](const std::string& body, const std::vector<seen_request>& seen) {
         ASSERT_EQ(seen.size(), 2U);
         EXPECT_EQ(carried(seen[1]), "a ");  // never the event it could not read for certain
         EXPECT_EQ(test::stream_text(test::sse_events(body)), "a z ");
       }},
      {"chat_thought_in_two_fields_that_differ", chat_request,
       {chat_chunk(R"({"role":"assistant","content":""})"),
        chat_chunk(R"({"reasoning_content":"x ","reasoning":"y "})")},
       false, 1, ends_with_stream_incomplete},
      {"chat_thought_after_the_answer", chat_request,
       {chat_chunk(R"({"role":"assistant","content":""})"), chat_chunk(R"({"content":"a "})"),
        chat_chunk(R"({"reasoning_content":"late "})")},
       false, 1, ends_with_stream_incomplete},
      {"chat_thought_carried_in_think_tags", chat_request,
       {chat_chunk(R"({"role":"assistant","content":""})"),
        chat_chunk(R"({"reasoning_content":"t1 "})"), chat_chunk(R"({"content":"a "})")},
       false, 2,
       [](const std::string& body, const std::vector<seen_request>& seen) {
         ASSERT_EQ(seen.size(), 2U);
         EXPECT_EQ(carried(seen[1]), "<think>t1 </think>a ");
         EXPECT_EQ(test::stream_thought(test::sse_events(body)), "t1 ");
         EXPECT_EQ(test::stream_text(test::sse_events(body)), "a z ");
       }},
  };
}

class hostile_stream : public ::testing::TestWithParam<stream_case> {};

TEST_P(hostile_stream, the_client_gets_one_stream_it_can_trust_or_the_explicit_signal) {
  const auto& c = GetParam();
  std::atomic<int> served{0};
  hostile_env env({}, [&](const seen_request&) {
    if (served++ == 0) {
      return upstream_reply{stream_reply(c.events, c.end), true};
    }
    return upstream_reply{continuation_reply(), true};
  });
  const auto r = exchange(env.port(), c.request);
  ASSERT_TRUE(r) << "no answer";
  EXPECT_EQ(r->status, 200U) << r->body;
  EXPECT_TRUE(r->complete) << "the gateway's own stream ends properly";
  const auto seen = env.upstream.requests();
  EXPECT_EQ(seen.size(), c.upstream_requests);
  c.check(r->body, seen);
}

INSTANTIATE_TEST_SUITE_P(hostile, hostile_stream, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// An upstream that promises heartbeats nobody asked for: its field stays on its hop (the client,
// which asked for nothing, is promised nothing), and the stream is relayed as any other.
TEST(hostile_stream_heartbeat, an_upstream_promise_nobody_asked_for_stays_on_its_hop) {
  hostile_env env({}, [](const seen_request&) {
    auto reply = stream_reply({chat_chunk(R"({"role":"assistant","content":""})"),
                               chat_chunk(R"({"content":"a "})"), chat_chunk("{}", "\"stop\""),
                               "data: [DONE]\n\n"},
                              true);
    reply.insert(reply.find("\r\n\r\n"), "\r\nX-Nines-Heartbeat-Ms: 100");
    return upstream_reply{reply, true};
  });
  const auto r = exchange(env.port(), chat_request);
  ASSERT_TRUE(r) << "no answer";
  EXPECT_EQ(r->status, 200U) << r->body;
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(r->header("x-nines-heartbeat-ms"), "");
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos) << r->body;
  const auto seen = env.upstream.requests();
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_FALSE(seen[0].has("x-nines-heartbeat-ms"));  // the gateway asks for none by default
}

}  // namespace
}  // namespace nines::hostile
