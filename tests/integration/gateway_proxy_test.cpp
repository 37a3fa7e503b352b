// The gateway in front of real mock-llm processes: routes, bad input, proxying of whole and
// streamed answers. Everything runs on ephemeral loopback ports.

#include <gtest/gtest.h>

#include "harness.hpp"

namespace nines::test {
namespace {

class gateway_proxy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mock_ = new server(start_mock());
    gateway_ = new server(start_gateway(upstreams_toml({mock_->url()}) +
                                        "\n[limits]\nmax_body_bytes = 8388608\n"));
  }
  static void TearDownTestSuite() {
    delete gateway_;
    delete mock_;
  }
  static server* mock_;
  static server* gateway_;
};
server* gateway_proxy::mock_ = nullptr;
server* gateway_proxy::gateway_ = nullptr;

TEST_F(gateway_proxy, health_and_readiness) {
  auto h = http_call(gateway_->port, "GET", "/healthz");
  EXPECT_EQ(h.status, 200U);
  EXPECT_EQ(h.body, R"({"status":"ok"})");
  auto r = http_call(gateway_->port, "GET", "/readyz");
  EXPECT_EQ(r.status, 200U);
  EXPECT_NE(r.body.find(R"("usable_upstreams":1)"), std::string::npos);
}

TEST_F(gateway_proxy, whole_chat_answer_is_proxied_with_the_right_content) {
  const auto body = chat_body("open the settings", false);
  auto r = http_call(gateway_->port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_FALSE(r.headers["x-request-id"].empty());
}

TEST_F(gateway_proxy, streamed_chat_arrives_event_by_event_and_ends_with_done) {
  const auto body = chat_body("scroll down", true);
  auto r = http_call(gateway_->port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(r.headers["content-type"], "text/event-stream");
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  auto events = sse_events(r.body);
  ASSERT_GE(events.size(), 3U);
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(stream_text(events), expected_answer(body, true));
}

TEST_F(gateway_proxy, completions_models_and_embeddings_routes) {
  const std::string body = R"({"model":"m","prompt":"Say:","stream":true})";
  auto c = http_call(gateway_->port, "POST", "/v1/completions", body);
  ASSERT_EQ(c.status, 200U);
  EXPECT_EQ(stream_text(sse_events(c.body)), expected_answer(body, false));
  auto m = http_call(gateway_->port, "GET", "/v1/models");
  EXPECT_EQ(m.status, 200U);
  EXPECT_NE(m.body.find("mock-model"), std::string::npos);
  auto e = http_call(gateway_->port, "POST", "/v1/embeddings", R"({"input":"x","model":"m"})");
  EXPECT_EQ(e.status, 200U);
  EXPECT_NE(e.body.find("embedding"), std::string::npos);
}

TEST_F(gateway_proxy, client_errors_pass_through_without_retry) {
  const auto before = mock_stat(mock_->port, "requests");
  // mock-llm answers 400 to a chat request without messages; the gateway must not retry it.
  auto r = http_call(gateway_->port, "POST", "/v1/chat/completions", R"({"model":"m"})");
  EXPECT_EQ(r.status, 400U);
  EXPECT_NE(r.body.find("messages"), std::string::npos);
  EXPECT_EQ(mock_stat(mock_->port, "requests"), before + 2);  // the 400, and this stats call
}

TEST_F(gateway_proxy, unknown_route_is_a_json_404) {
  auto r = http_call(gateway_->port, "GET", "/nope");
  EXPECT_EQ(r.status, 404U);
  EXPECT_NE(r.body.find(R"("type":"not_found")"), std::string::npos);
}

TEST_F(gateway_proxy, invalid_json_is_a_400_saying_where) {
  auto r = http_call(gateway_->port, "POST", "/v1/chat/completions", R"({"model": "m", "stream": tru})");
  EXPECT_EQ(r.status, 400U);
  EXPECT_NE(r.body.find("invalid JSON at byte"), std::string::npos);
  auto arr = http_call(gateway_->port, "POST", "/v1/chat/completions", "[1]");
  EXPECT_EQ(arr.status, 400U);
}

TEST_F(gateway_proxy, malformed_http_is_a_400_and_close) {
  auto out = raw_exchange(gateway_->port, "GARBAGE /\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 400")) << out;
  EXPECT_NE(out.find("malformed HTTP request"), std::string::npos);
  auto version = raw_exchange(gateway_->port, "GET / HTTP/9.9\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(version.starts_with("HTTP/1.1 505")) << version;
  auto bad_length = raw_exchange(gateway_->port,
                                 "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: abc\r\n\r\n");
  EXPECT_TRUE(bad_length.starts_with("HTTP/1.1 400")) << bad_length;
}

TEST_F(gateway_proxy, body_over_the_limit_is_a_413_json_error) {
  const std::string big(9u << 20, 'x');
  auto r = http_call(gateway_->port, "POST", "/v1/chat/completions", big);
  EXPECT_EQ(r.status, 413U);
  EXPECT_NE(r.body.find("request_too_large"), std::string::npos);
  EXPECT_NE(r.body.find("8388608"), std::string::npos);
  // The gateway is still fine afterwards.
  EXPECT_EQ(http_call(gateway_->port, "GET", "/healthz").status, 200U);
}

TEST_F(gateway_proxy, four_megabyte_screenshot_request_goes_through) {
  std::string image(4u << 20, 'A');
  const std::string body =
      R"({"model":"m","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"tap?"},)"
      R"({"type":"image_url","image_url":{"url":"data:image/png;base64,)" + image + R"("}}]}]})";
  auto r = http_call(gateway_->port, "POST", "/v1/chat/completions", body,
                     {{"expect", "100-continue"}});
  ASSERT_EQ(r.status, 200U) << r.body.substr(0, 300);
  EXPECT_EQ(stream_text(sse_events(r.body)), expected_answer(body, true));
}

TEST_F(gateway_proxy, request_headers_reach_the_upstream_and_x_request_id_is_kept) {
  auto r = http_call(gateway_->port, "POST", "/v1/chat/completions", chat_body("x", false),
                     {{"x-request-id", "req-123"}, {"x-mock-fault", "error_rate=0"}});
  EXPECT_EQ(r.status, 200U);
  EXPECT_EQ(r.headers["x-request-id"], "req-123");
  // The access log line carries it.
  EXPECT_TRUE(gateway_->proc->wait_for_output(R"("id":"req-123")"));
}

// Events are relayed as they arrive, not when a buffer fills: with the upstream stalled after three
// tokens, the client already has those three while the stream is still open.
TEST(gateway_relay, events_reach_the_client_while_the_upstream_still_generates) {
  auto stalling = start_mock({"--faults", "stall_after=3"});
  auto gw = start_gateway(upstreams_toml({stalling.url()}) +
                          "\n[timeouts]\nstream_idle_ms = 60000\nfirst_byte_ms = 60000\n");
  stream_reader reader(gw.port, "/v1/chat/completions", chat_body("live", true));
  ASSERT_TRUE(reader.read_events(4));  // the role chunk and three tokens
  EXPECT_FALSE(reader.ended());
  EXPECT_EQ(reader.events().size(), 4U);
}

}  // namespace
}  // namespace nines::test
