// nines mock-llm over HTTP: run-time faults and vLLM's continuation convention.

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

TEST(mock_llm, faults_are_replaced_at_run_time) {
  auto mock = start_mock();
  EXPECT_EQ(http_call(mock.port, "POST", "/v1/chat/completions", chat_body("a", false)).status, 200U);
  EXPECT_EQ(http_call(mock.port, "POST", "/mock/faults", R"({"error_rate":1})").status, 200U);
  EXPECT_EQ(http_call(mock.port, "POST", "/v1/chat/completions", chat_body("a", false)).status, 503U);
  EXPECT_EQ(http_call(mock.port, "POST", "/mock/faults", R"({})").status, 200U);
  EXPECT_EQ(http_call(mock.port, "POST", "/v1/chat/completions", chat_body("a", false)).status, 200U);
  // A count written as a JSON double (as some clients serialise every number) is still a count.
  EXPECT_EQ(http_call(mock.port, "POST", "/mock/faults", R"({"tpot_ms":2E1})").status, 200U);
  EXPECT_EQ(http_call(mock.port, "POST", "/mock/faults", R"({})").status, 200U);
  auto bad = http_call(mock.port, "POST", "/mock/faults", R"({"error_rate":7})");
  EXPECT_EQ(bad.status, 400U);
  EXPECT_NE(bad.body.find("bad fault"), std::string::npos);
  // A per-request header overrides for that request only.
  auto r = http_call(mock.port, "POST", "/v1/chat/completions", chat_body("a", false),
                     {{"x-mock-fault", "rate_limit_rate=1,retry_after=7"}});
  EXPECT_EQ(r.status, 429U);
  EXPECT_EQ(r.headers["retry-after"], "7");
}

TEST(mock_llm, continue_final_message_yields_exactly_the_rest_of_the_answer) {
  auto mock = start_mock();
  const auto full = answer_text(
      http_call(mock.port, "POST", "/v1/chat/completions", chat_body("continue me", false)).body);
  // The first five tokens (each ends in a space) as the assistant's partial message.
  std::size_t cut = 0;
  for (int i = 0; i < 5; ++i) {
    cut = full.find(' ', cut) + 1;
  }
  const std::string prefix = full.substr(0, cut);
  json::object body{{"model", "m"},
                    {"stream", true},
                    {"continue_final_message", true},
                    {"add_generation_prompt", false}};
  body["messages"] = json::array{json::object{{"role", "user"}, {"content", "continue me"}},
                                 json::object{{"role", "assistant"}, {"content", prefix}}};
  auto r = http_call(mock.port, "POST", "/v1/chat/completions", json::serialize(body));
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(prefix + stream_text(sse_events(r.body)), full);
  EXPECT_EQ(mock_stat(mock.port, "continuations"), 1U);
}

}  // namespace
}  // namespace nines::test
