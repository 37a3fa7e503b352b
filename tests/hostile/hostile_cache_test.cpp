// The answer cache against a hostile upstream and hostile clients: what an upstream says about one
// exchange (cookies, rate-limit counts, its own x-nines-cache) is never sent again with a kept
// answer; a 200 that is not an answer (an error object, HTML, a server's no-store, a stream cut
// before its end) is not kept; a request that is ambiguous (temperature given twice) or differs in
// a header that goes upstream is never answered with another one's answer. Each case asserts what
// the client got and what the upstream received.

#include <gtest/gtest.h>

#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

const std::string cache_toml = "[cache]\nmax_bytes = 16777216\n";
const std::string chat =
    R"({"model":"m","temperature":0,"messages":[{"role":"user","content":"x"}]})";

std::string json_answer(const std::string& body, const std::string& extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

const std::string answer_body =
    R"({"id":"a","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"kept"},"finish_reason":"stop"}]})";

client_response ask(hostile_env& env, const std::string& body, const std::string& headers = {}) {
  raw_client c(env.port());
  EXPECT_TRUE(c.send(post("/v1/chat/completions", body, headers)));
  auto r = c.read_response();
  EXPECT_TRUE(r.has_value());
  return r.value_or(client_response{});
}

TEST(hostile_cache, what_an_upstream_said_of_one_exchange_is_not_sent_again) {
  hostile_env env(cache_toml, [](const seen_request&) {
    return upstream_reply{json_answer(answer_body,
                                      "Set-Cookie: session=secret-of-the-first\r\n"
                                      "x-ratelimit-remaining-requests: 41\r\n"
                                      "x-nines-cache: hit\r\nx-request-id: upstream-id\r\n"
                                      "openai-processing-ms: 812\r\nopenai-model: m\r\n")};
  });
  const auto first = ask(env, chat);
  EXPECT_EQ(first.status, 200u);
  EXPECT_EQ(first.header("x-nines-cache"), "miss");  // the gateway's word, not the upstream's
  const auto again = ask(env, chat);
  EXPECT_EQ(again.status, 200u);
  EXPECT_EQ(again.header("x-nines-cache"), "hit");
  EXPECT_EQ(again.body, answer_body);
  EXPECT_EQ(env.upstream.request_count(), 1u);
  EXPECT_EQ(again.header("set-cookie"), "");
  EXPECT_EQ(again.header("x-ratelimit-remaining-requests"), "");
  EXPECT_EQ(again.header("openai-processing-ms"), "");
  EXPECT_EQ(again.header("openai-model"), "m");  // what the answer is stays
  EXPECT_NE(again.header("x-request-id"), "upstream-id");
  EXPECT_NE(again.header("x-request-id"), first.header("x-request-id"));
}

struct not_an_answer {
  std::string name;
  std::string reply;
};

std::ostream& operator<<(std::ostream& os, const not_an_answer& c) {
  return os << c.name;
}

class hostile_cache_refuses : public ::testing::TestWithParam<not_an_answer> {};

TEST_P(hostile_cache_refuses, a_200_that_is_not_an_answer_is_not_kept) {
  const auto reply = GetParam().reply;
  hostile_env env(cache_toml, [reply](const seen_request&) { return upstream_reply{reply}; });
  const auto first = ask(env, chat);
  EXPECT_EQ(first.status, 200u);
  const auto again = ask(env, chat);
  EXPECT_EQ(again.header("x-nines-cache"), "miss") << "kept: " << GetParam().name;
  EXPECT_EQ(env.upstream.request_count(), 2u);  // asked again
}

INSTANTIATE_TEST_SUITE_P(
    hostile, hostile_cache_refuses,
    ::testing::Values(
        not_an_answer{"error_object", json_answer(R"({"error":{"message":"overloaded"}})")},
        not_an_answer{"html",
                      "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                      "17\r\n\r\n<html>login</html>"},
        not_an_answer{"json_that_is_not_an_object", json_answer("[1,2,3]")},
        not_an_answer{"server_says_no_store",
                      json_answer(answer_body, "Cache-Control: private, no-store\r\n")}),
    [](const auto& info) { return info.param.name; });

TEST(hostile_cache, a_stream_its_server_marked_no_store_is_not_kept) {
  const std::string stream_body =
      R"({"model":"m","temperature":0,"stream":true,"messages":[{"role":"user","content":"x"}]})";
  hostile_env env(cache_toml, [](const seen_request&) {
    const std::string events =
        R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]})"
        "\n\ndata: [DONE]\n\n";
    return upstream_reply{
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-store\r\nContent-Length: " +
        std::to_string(events.size()) + "\r\n\r\n" + events};
  });
  const auto first = ask(env, stream_body);
  EXPECT_EQ(first.status, 200u);
  EXPECT_NE(first.body.find("[DONE]"), std::string::npos);
  EXPECT_NE(first.header("cache-control").find("no-store"), std::string::npos);
  const auto again = ask(env, stream_body);
  EXPECT_EQ(again.header("x-nines-cache"), "miss");
  EXPECT_EQ(env.upstream.request_count(), 2u);
}

TEST(hostile_cache, a_stream_cut_before_its_end_is_not_kept) {
  const std::string stream_body =
      R"({"model":"m","temperature":0,"stream":true,"messages":[{"role":"user","content":"x"}]})";
  hostile_env env(cache_toml, [](const seen_request&) {
    // One event, then the connection ends: no [DONE], no finish_reason.
    const std::string event =
        R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})"
        "\n\n";
    return upstream_reply{"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " +
                              std::to_string(event.size()) + "\r\n\r\n" + event,
                          true};
  });
  const auto first = ask(env, stream_body);
  EXPECT_EQ(first.status, 200u);
  EXPECT_NE(first.body.find("error"), std::string::npos);  // ended with the explicit error event
  const auto again = ask(env, stream_body);
  EXPECT_EQ(again.header("x-nines-cache"), "miss");
  EXPECT_GE(env.upstream.request_count(), 2u);
}

TEST(hostile_cache, an_ambiguous_or_different_request_never_gets_another_ones_answer) {
  hostile_env env(cache_toml, [](const seen_request& r) {
    return upstream_reply{json_answer(R"({"object":"chat.completion","choices":[],"for":")" +
                                      std::to_string(r.body.size()) + "\"}")};
  });
  // Temperature given twice: which one a server reads is a guess, so it is never kept.
  const std::string twice =
      R"({"model":"m","temperature":0,"temperature":1,"messages":[{"role":"user","content":"x"}]})";
  EXPECT_EQ(ask(env, twice).header("x-nines-cache"), "bypass");
  EXPECT_EQ(ask(env, twice).header("x-nines-cache"), "bypass");
  EXPECT_EQ(env.upstream.request_count(), 2u);
  // A header that goes upstream is part of the request.
  EXPECT_EQ(ask(env, chat, "OpenAI-Organization: org-a\r\n").header("x-nines-cache"), "miss");
  EXPECT_EQ(ask(env, chat, "OpenAI-Organization: org-b\r\n").header("x-nines-cache"), "miss");
  EXPECT_EQ(ask(env, chat, "OpenAI-Organization: org-a\r\n").header("x-nines-cache"), "hit");
  EXPECT_EQ(env.upstream.request_count(), 4u);
  // A header the gateway reads itself, or an SDK's retry count, is not.
  EXPECT_EQ(ask(env, chat, "OpenAI-Organization: org-a\r\nx-stainless-retry-count: 2\r\n")
                .header("x-nines-cache"),
            "hit");
  // The same body under another path is another request.
  raw_client c(env.port());
  ASSERT_TRUE(c.send(post("/v1/completions", R"({"model":"m","temperature":0,"prompt":"x"})")));
  EXPECT_EQ(c.read_response()->header("x-nines-cache"), "miss");
}

}  // namespace
}  // namespace nines::hostile
