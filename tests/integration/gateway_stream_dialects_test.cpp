// Every stream ends the way its API ends: [DONE] for chat and completions, response.completed
// (or .failed, .incomplete) for the Responses API, message_stop for Anthropic-style messages; and
// a stream on a route nines does not know is relayed byte for byte and judged by its transport
// only. A break that cannot be continued ends in the API's own error form, or (a protocol nines
// does not speak) with the client's transfer cut — never with a "completed" of any kind.

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "core/tools/mock_responses.hpp"
#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

constexpr std::size_t thought_tokens = 4;

std::string responses_body(const std::string& input) {
  return json::serialize(json::object{{"model", "m"}, {"input", input}, {"stream", true}});
}

struct typed_stream {
  std::vector<std::string> types;
  std::vector<std::int64_t> sequence;
  std::string thought;
  std::string answer;
  std::vector<json::object> data;
};

typed_stream read_typed(const std::string& body) {
  typed_stream s;
  for (const auto& e : sse_events(body)) {
    auto o = json::parse(e.data).as_object();
    const std::string type(o.at("type").as_string());
    EXPECT_EQ(e.type, type) << "the SSE event type is the data's type";
    s.types.push_back(type);
    if (const auto* n = o.if_contains("sequence_number")) {
      s.sequence.push_back(n->to_number<std::int64_t>());
    }
    if (type == "response.reasoning_text.delta") {
      s.thought += o.at("delta").as_string();
    } else if (type == "response.output_text.delta") {
      s.answer += o.at("delta").as_string();
    }
    s.data.push_back(std::move(o));
  }
  return s;
}

class gateway_stream_dialects : public ::testing::Test {
 protected:
  void SetUp() override {
    mock_ = start_mock({"--thought-tokens", std::to_string(thought_tokens)});
    gw_ = start_gateway("[retry]\nmax_resumes = 1\n[routes]\npassthrough = [\"POST /v1/ticks\"]\n" +
                            upstreams_toml({mock_.url()}),
                        {"--access-log", "stdout"});
  }
  server mock_, gw_;
};

// What the issue found: 0 of 10 healthy Responses streams completed, because nines appended its
// own stream_incomplete after response.completed.
TEST_F(gateway_stream_dialects, a_healthy_responses_stream_ends_with_response_completed) {
  for (int i = 0; i < 10; ++i) {
    const auto body = responses_body("tap " + std::to_string(i));
    auto r = http_call(gw_.port, "POST", "/v1/responses", body);
    ASSERT_EQ(r.status, 200U);
    const auto s = read_typed(r.body);
    ASSERT_FALSE(s.types.empty());
    EXPECT_EQ(s.types.back(), "response.completed") << r.body;
    EXPECT_EQ(std::count(s.types.begin(), s.types.end(), "error"), 0);
    const auto want = expected_output(body, core::mock_api::responses, thought_tokens);
    EXPECT_EQ(s.thought, want.thought);
    EXPECT_EQ(s.answer, want.answer);
    for (std::size_t k = 0; k < s.sequence.size(); ++k) {
      EXPECT_EQ(s.sequence[k], static_cast<std::int64_t>(k));
    }
  }
  auto line = gw_.proc->wait_for_output(R"("route":"/v1/responses")");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find(R"("outcome":"ok")"), std::string::npos) << *line;
  // The usage of response.completed is the request's, as a chat stream's usage chunk is.
  core::mock_plan plan;
  std::string error;
  ASSERT_TRUE(core::plan_mock_answer(json::parse(responses_body("tap 0")).as_object(),
                                     core::mock_api::responses, 24, thought_tokens, plan, error));
  const auto total = plan.prompt_tokens + (plan.end_token - plan.first_token);
  EXPECT_NE(line->find("\"tokens\":" + std::to_string(total) + ","), std::string::npos) << *line;
}

// When nothing can be saved (here: the only upstream breaks every stream after k tokens, and one
// resume is allowed, so at most 2k of the 28 tokens arrive), the client gets what was sent, then the Responses API's error event with the next
// sequence number, never response.completed.
TEST_F(gateway_stream_dialects, a_responses_stream_that_cannot_be_saved_ends_with_an_error_event) {
  for (const std::string kind : {"die_after", "cut_after", "malformed_after"}) {
    for (std::size_t k = 1; k < 14; k += 4) {
      const auto body = responses_body("break " + std::to_string(k));
      auto r = http_call(gw_.port, "POST", "/v1/responses", body,
                         {{"x-mock-fault", kind + "=" + std::to_string(k)}});
      ASSERT_EQ(r.status, 200U);
      const auto s = read_typed(r.body);
      const std::string what = kind + "=" + std::to_string(k);
      ASSERT_GE(s.types.size(), 2U) << what;
      EXPECT_EQ(std::count(s.types.begin(), s.types.end(), "response.completed"), 0) << what;
      EXPECT_EQ(s.types.back(), "error") << what;
      const auto& end = s.data.back();
      EXPECT_EQ(end.at("code").as_string(), "stream_incomplete") << what;
      // The error object too, which makes the openai SDK raise rather than end quietly.
      EXPECT_EQ(end.at("error").as_object().at("type").as_string(), "stream_incomplete") << what;
      for (std::size_t n = 0; n < s.sequence.size(); ++n) {
        EXPECT_EQ(s.sequence[n], static_cast<std::int64_t>(n)) << what;
      }
      const auto want = expected_output(body, core::mock_api::responses, thought_tokens);
      EXPECT_TRUE(want.thought.starts_with(s.thought)) << what;
      EXPECT_TRUE(want.answer.starts_with(s.answer)) << what;
    }
  }
  auto line = gw_.proc->wait_for_output(R"("outcome":"stream_incomplete")");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find(R"("route":"/v1/responses")"), std::string::npos) << *line;
  EXPECT_NE(line->find("resumes exhausted"), std::string::npos) << *line;
}

TEST_F(gateway_stream_dialects, a_messages_stream_ends_with_message_stop_or_its_own_error_event) {
  const std::string body =
      R"({"model":"m","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hi"}]})";
  auto r = http_call(gw_.port, "POST", "/v1/messages", body);
  ASSERT_EQ(r.status, 200U);
  auto s = read_typed(r.body);
  ASSERT_FALSE(s.types.empty());
  EXPECT_EQ(s.types.front(), "message_start");
  EXPECT_EQ(s.types.back(), "message_stop") << r.body;

  r = http_call(gw_.port, "POST", "/v1/messages", body, {{"x-mock-fault", "die_after=3"}});
  s = read_typed(r.body);
  ASSERT_FALSE(s.types.empty());
  EXPECT_EQ(std::count(s.types.begin(), s.types.end(), "message_stop"), 0);
  EXPECT_EQ(s.types.back(), "error");
  EXPECT_EQ(s.data.back().at("error").as_object().at("type").as_string(), "api_error");
  EXPECT_NE(std::string(s.data.back().at("error").as_object().at("message").as_string())
                .find("incomplete"),
            std::string::npos);
}

// routes.passthrough: nines does not know the protocol, so the stream is relayed byte for byte
// (no ids of its own, events that are not JSON untouched), and a break cuts the client's transfer
// (a chunked body without its last chunk) instead of "completing" it with an error event in a
// protocol nines does not speak. The access log and the metrics record the break.
TEST_F(gateway_stream_dialects, an_unknown_route_streams_verbatim_and_a_break_cuts_the_transfer) {
  auto whole = http_call(gw_.port, "POST", "/v1/ticks", "{}");
  ASSERT_EQ(whole.status, 200U);
  EXPECT_TRUE(whole.complete);
  std::string expected;
  for (int n = 0; n < 8; ++n) {
    expected += "data: tick " + std::to_string(n) + "\n\n";
  }
  EXPECT_EQ(whole.body, expected);

  auto cut = http_call(gw_.port, "POST", "/v1/ticks", "{}", {{"x-mock-fault", "die_after=3"}});
  EXPECT_EQ(cut.status, 200U);
  EXPECT_FALSE(cut.complete) << "a broken stream must not look complete";
  EXPECT_EQ(cut.body, "data: tick 0\n\ndata: tick 1\n\ndata: tick 2\n\n");
  auto line = gw_.proc->wait_for_output(R"("outcome":"stream_incomplete")");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find(R"("route":"/v1/ticks")"), std::string::npos) << *line;
  EXPECT_TRUE(eventually([&] {
    return metric_value(gw_.admin_port,
                        R"(nines_requests_total{route="other_v1",status="200",outcome="stream_incomplete",upstream="u0"})") == 1;
  }));
}

}  // namespace
}  // namespace nines::test
