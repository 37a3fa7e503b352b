// Hostile clients, request targets and headers: paths that leave /v1/ (dot segments, encoded
// slashes), routes outside the allow-list, non-origin forms; hop-by-hop headers, including those
// a Connection header names, and the gateway's own headers. Each case asserts what the client got
// and what the upstream received (nothing, or the canonical path and only end-to-end headers).

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

struct target_case {
  std::string name;
  std::string request;
  unsigned status;
  std::string code;
  std::string forwarded_target;  // what the upstream must be asked for ("": nothing forwarded)
};

std::ostream& operator<<(std::ostream& os, const target_case& c) { return os << c.name; }

std::vector<target_case> target_cases() {
  return {
      {"dot_dot_to_metrics", get("/v1/../metrics"), 400, "bad_request_target", ""},
      {"encoded_dot_dot", get("/v1/%2e%2e/sleep"), 400, "bad_request_target", ""},
      {"upper_encoded_dot_dot", get("/v1/%2E%2E/sleep"), 400, "bad_request_target", ""},
      {"mixed_dot_segments", get("/v1/./../start_profile"), 400, "bad_request_target", ""},
      {"half_encoded_dot_dot", get("/v1/.%2e/collective_rpc"), 400, "bad_request_target", ""},
      {"dot_dot_encoded_slash", post("/v1/..%2fcollective_rpc", "{}"), 400, "bad_request_target", ""},
      {"dot_dot_with_path_parameters", get("/v1/models/..;/..;/metrics"), 400, "bad_request_target",
       ""},
      {"dot_dot_with_encoded_semicolon", get("/v1/models/..%3b/x"), 400, "bad_request_target", ""},
      {"encoded_slash_in_model_id", get("/v1/models/Qwen%2FQwen2"), 400, "bad_request_target", ""},
      {"encoded_backslash", get("/v1/models%5c..%5cx"), 400, "bad_request_target", ""},
      {"raw_backslash", get("/v1/models\\..\\x"), 400, "bad_request_target", ""},
      {"empty_segment", post("/v1//chat/completions", "{}"), 400, "bad_request_target", ""},
      {"encoded_nul", get("/v1/models/a%00b"), 400, "bad_request_target", ""},
      {"encoded_crlf", get("/v1/models/a%0d%0aX-Injected:%20y"), 400, "bad_request_target", ""},
      {"bad_percent_encoding", get("/v1/models/a%zz"), 400, "bad_request_target", ""},
      {"bad_percent_in_query", get("/v1/models?x=%g1"), 400, "bad_request_target", ""},
      {"fragment", get("/v1/models#x"), 400, "bad_request_target", ""},
      {"absolute_form", "GET http://evil.example/v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", 400,
       "bad_request_target", ""},
      {"authority_form", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", 400,
       "bad_request_target", ""},
      {"asterisk_form", "OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n", 400, "bad_request_target", ""},
      {"not_an_api_route", post("/v1/load_lora_adapter", "{}"), 404, "route_not_found", ""},
      {"outside_v1", post("/start_profile", "{}"), 404, "route_not_found", ""},
      {"vllm_admin_under_v1_like", post("/v1/collective_rpc", "{}"), 404, "route_not_found", ""},
      {"trailing_slash", get("/v1/models/"), 404, "route_not_found", ""},
      {"v1_alone", get("/v1"), 404, "route_not_found", ""},
      {"wrong_method", get("/v1/chat/completions"), 405, "method_not_allowed", ""},
      {"trace", "TRACE /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", 405, "method_not_allowed", ""},
      {"passthrough_not_configured", post("/v1/detokenize", "{}"), 404, "route_not_found", ""},
      // What is allowed goes upstream in canonical form.
      {"encoded_route_is_canonical", post("/v1/%65mbeddings", json_body), 200, "", "/v1/embeddings"},
      {"model_id_with_slashes", get("/v1/models/Qwen/Qwen2.5-VL-7B"), 200, "",
       "/v1/models/Qwen/Qwen2.5-VL-7B"},
      {"model_id_encoding_normalised", get("/v1/models/a%2db%20c"), 200, "", "/v1/models/a-b%20c"},
      {"query_kept_as_sent", get("/v1/models?limit=5&after=a%2Fb"), 200, "",
       "/v1/models?limit=5&after=a%2Fb"},
      {"passthrough_configured", post("/v1/tokenize", "{\"prompt\":\"x\"}"), 200, "", "/v1/tokenize"},
      {"head_goes_where_get_does", "HEAD /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", 200, "",
       "/v1/models"},
  };
}

class request_targets : public ::testing::TestWithParam<target_case> {
 protected:
  static void SetUpTestSuite() { env_ = new hostile_env(); }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  static hostile_env* env_;
};
hostile_env* request_targets::env_ = nullptr;

TEST_P(request_targets, reach_the_upstream_only_on_an_allowed_route_in_canonical_form) {
  const auto& c = GetParam();
  const auto before = env_->upstream.request_count();
  const auto r = exchange(env_->port(), c.request, c.request.starts_with("HEAD"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, c.status) << r->body;
  EXPECT_EQ(error_code_of(r->body), c.code) << r->body;
  const auto all = env_->upstream.requests();
  if (c.forwarded_target.empty()) {
    EXPECT_EQ(all.size(), before) << "reached the upstream: " << all.back().head;
  } else {
    ASSERT_EQ(all.size(), before + 1);
    EXPECT_EQ(all.back().target, c.forwarded_target);
  }
}

INSTANTIATE_TEST_SUITE_P(hostile, request_targets, ::testing::ValuesIn(target_cases()),
                         [](const auto& info) { return info.param.name; });

class headers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { env_ = new hostile_env(); }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  // Sends `extra` header lines on a GET /v1/models; returns what the upstream received.
  static seen_request forward(const std::string& extra) {
    const auto before = env_->upstream.request_count();
    const auto r = exchange(env_->port(), get("/v1/models", extra));
    EXPECT_TRUE(r && r->status == 200);
    const auto all = env_->upstream.requests();
    EXPECT_EQ(all.size(), before + 1);
    return all.back();
  }
  static hostile_env* env_;
};
hostile_env* headers::env_ = nullptr;

TEST_F(headers, fields_named_by_connection_stay_on_the_client_hop) {
  const auto seen = forward("Connection: keep-alive, X-Secret, x-other\r\nX-Secret: s\r\n"
                            "X-Other: o\r\nX-Kept: k\r\n");
  EXPECT_FALSE(seen.has("x-secret")) << seen.head;
  EXPECT_FALSE(seen.has("x-other"));
  EXPECT_EQ(seen.headers.at("x-kept"), "k");
}

TEST_F(headers, fixed_hop_by_hop_fields_stay_on_the_client_hop) {
  const auto seen = forward("Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
                            "Proxy-Authorization: Basic eDp5\r\nTE: trailers\r\nTrailer: X-T\r\n");
  for (const char* name : {"keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer"}) {
    EXPECT_FALSE(seen.has(name)) << name;
  }
}

TEST_F(headers, the_gateway_sets_host_and_its_own_fields_do_not_leave_it) {
  const auto seen = forward("X-Nines-Hedge: 5\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-"
                            "b7ad6b7169203331-01\r\nIdempotency-Key: k1\r\nLast-Event-ID: a:1\r\n"
                            "Accept-Encoding: gzip\r\nX-Nines-Heartbeat-Ms: 100\r\n");
  EXPECT_EQ(seen.headers.at("host"), "127.0.0.1:" + std::to_string(env_->upstream.port()));
  EXPECT_FALSE(seen.has("x-nines-hedge"));
  EXPECT_FALSE(seen.has("x-nines-heartbeat-ms"));  // asked of this hop, not of the next
  EXPECT_FALSE(seen.has("idempotency-key"));
  EXPECT_FALSE(seen.has("last-event-id"));
  EXPECT_FALSE(seen.has("accept-encoding"));
  // The upstream gets the gateway's span, in the client's trace.
  ASSERT_TRUE(seen.has("traceparent"));
  EXPECT_NE(seen.headers.at("traceparent").find("0af7651916cd43dd8448eb211c80319c"),
            std::string::npos);
  EXPECT_EQ(seen.headers.at("traceparent").find("b7ad6b7169203331"), std::string::npos);
}

// The upstream head is written by hand (request_forwarder::append_upstream_request_head): each
// field the gateway sets appears once, whatever the client sent of it (the client's Host is
// replaced by the upstream's), and a GET carries no length.
TEST_F(headers, the_fields_the_gateway_sets_appear_once_in_the_upstream_head) {
  const auto seen = forward("X-Request-Id: first\r\nX-Request-Id: second\r\n");
  EXPECT_EQ(seen.headers.at("x-request-id"), "first") << seen.head;  // joined if repeated
  EXPECT_EQ(seen.headers.at("host"), "127.0.0.1:" + std::to_string(env_->upstream.port()));
  EXPECT_FALSE(seen.has("content-length")) << seen.head;
  EXPECT_TRUE(seen.head.starts_with(seen.method + " " + seen.target + " HTTP/1.1\r\n")) << seen.head;
  EXPECT_TRUE(seen.head.ends_with("\r\n\r\n")) << seen.head;
}

// Names with '_' are read differently by different servers (CGI maps '-' to '_'): not forwarded,
// as nginx does by default.
TEST_F(headers, field_names_with_underscores_are_not_forwarded) {
  const auto seen = forward("X_Forwarded_For: 10.0.0.1\r\nContent_Length: 5\r\nX-Fine: 1\r\n");
  EXPECT_FALSE(seen.has("x_forwarded_for"));
  EXPECT_FALSE(seen.has("content_length"));
  EXPECT_TRUE(seen.has("x-fine"));
}

// Two upstreams, the first slow to answer: a client's x-nines-hedge would send a second attempt
// after 1 ms. By default it is not honoured: one request reaches one upstream.
TEST(client_hedge_header, does_not_multiply_upstream_work_by_default) {
  std::mutex m;
  std::condition_variable hedged;
  bool second_seen = false;
  scripted_upstream second([&](const seen_request& r) {
    {
      std::lock_guard lock(m);
      second_seen = true;
    }
    hedged.notify_all();
    return upstream_reply{ok_response("second")};
  });
  // The first waits (at most 200 ms) for a hedge to reach the second upstream: it answers at once
  // if one does, so that a hedge cannot go unseen.
  hostile_env env("[[upstreams]]\nname = \"u1\"\nurl = \"" + second.url() + "/v1\"\npriority = 1\n",
                  [&](const seen_request& r) {
                    std::unique_lock lock(m);
                    hedged.wait_for(lock, milliseconds(200), [&] { return second_seen; });
                    return upstream_reply{ok_response("first")};
                  });
  const auto r = exchange(env.port(), post("/v1/embeddings", json_body, "X-Nines-Hedge: 1\r\n"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200U);
  EXPECT_EQ(env.upstream.request_count() + second.request_count(), 1U);
  EXPECT_EQ(test::metric_value(env.admin_port(), "nines_hedges_total{result=\"sent\"}"), 0U);
}

TEST_F(headers, response_fields_named_by_connection_and_hop_by_hop_fields_stay_upstream) {
  env_->upstream.set_script([](const seen_request&) {
    return upstream_reply{
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: X-Up-Secret\r\n"
        "X-Up-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n"
        "Upgrade: h2c\r\nTrailer: X-T\r\nX-Up-Kept: k\r\nContent-Length: 2\r\n\r\n{}"};
  });
  const auto r = exchange(env_->port(), get("/v1/models"));
  env_->upstream.set_script(echo_target);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200U);
  EXPECT_EQ(r->body, "{}");
  for (const char* name : {"x-up-secret", "keep-alive", "proxy-connection", "upgrade", "trailer"}) {
    EXPECT_FALSE(r->headers.contains(name)) << name << "\n" << r->head;
  }
  EXPECT_EQ(r->header("x-up-kept"), "k");
}

}  // namespace
}  // namespace nines::hostile
