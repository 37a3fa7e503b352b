// Hostile upstreams: interim 1xx responses, stray and late bytes, bodies longer or shorter than
// framed, HEAD/204/304 framing, framing and grammar faults, hop-by-hop fields, close-delimited
// bodies. Each case asserts what the client got, and then that the *next* client request gets its
// own answer (never the leftovers of the previous one), on the connection the rules call for.

#include <gtest/gtest.h>

#include <atomic>

#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

const std::string sse_chunk =
    R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]})"
    "\n\n";
const std::string sse_stop =
    R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})"
    "\n\ndata: [DONE]\n\n";

std::string chunk(const std::string& data) {
  char size[20];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

struct upstream_case {
  std::string name;
  std::string request;       // from the client
  bool head = false;         // the request is HEAD
  std::string first_reply;   // the upstream's bytes for the first request
  bool close_after = false;  // the upstream closes after them
  unsigned status;           // the client must get
  std::string body;          // ... with this body (exactly), unless `any_body`
  unsigned next_connection;  // the connection the next request must use (1: reused, 2: new)
  bool any_body = false;
  std::function<void(const client_response&)> check = {};
};

std::ostream& operator<<(std::ostream& os, const upstream_case& c) { return os << c.name; }

std::string length_response(const std::string& body, const std::string& extra = {}) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::vector<upstream_case> cases() {
  const std::string models = get("/v1/models");
  const std::string ok = length_response(R"({"first":1})");
  const std::string ok_body = R"({"first":1})";
  std::string nine_interim;
  for (int i = 0; i < 9; ++i) {
    nine_interim += "HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n";
  }
  const auto stream_request =
      post("/v1/chat/completions",
           R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})");
  const std::string stream_head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
  const auto sse_ends_well = [](const client_response& r) {
    EXPECT_NE(r.body.find("\"content\":\"hi\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("data: [DONE]"), std::string::npos) << r.body;
  };
  return {
      // Interim responses are never the answer.
      {"interim_100_then_answer", models, false, "HTTP/1.1 100 Continue\r\n\r\n" + ok, false, 200,
       ok_body, 1},
      {"early_hints_then_answer", models, false,
       "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + ok, false, 200, ok_body,
       1, false, [](const client_response& r) { EXPECT_FALSE(r.headers.contains("link")); }},
      {"two_interim_then_answer", models, false,
       "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n" + ok, false, 200, ok_body, 1},
      {"eight_interim_then_answer", models, false, nine_interim.substr(nine_interim.size() / 9) + ok,
       false, 200, ok_body, 1},
      {"too_many_interim", models, false, nine_interim + ok, false, 502, "", 2, true},
      {"switching_protocols_nobody_asked_for", models, false,
       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", false, 502,
       "", 2, true},
      {"interim_before_a_stream", stream_request, false,
       "HTTP/1.1 100 Continue\r\n\r\n" + stream_head + chunk(sse_chunk) + chunk(sse_stop) +
           "0\r\n\r\n",
       false, 200, "", 1, true, sse_ends_well},
      // More than was framed: the client gets the framed answer, and the rest never reaches anyone.
      {"a_second_response_after_the_answer", models, false, ok + length_response(R"({"stray":1})"),
       false, 200, ok_body, 2},
      {"body_longer_than_its_length", models, false,
       "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12345EXTRA-BYTES", false, 200, "12345", 2},
      {"stream_with_a_response_after_its_end", stream_request, false,
       stream_head + chunk(sse_chunk) + chunk(sse_stop) + "0\r\n\r\n" + ok, false, 200, "", 2, true,
       sse_ends_well},
      {"body_shorter_than_its_length_then_close", models, false,
       "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"short\":", true, 502, "", 2, true},
      // Bodiless answers.
      {"head_with_length_and_no_body", "HEAD /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", true,
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", false, 200,
       "", 1, false,
       [](const client_response& r) { EXPECT_EQ(r.headers.at("content-length"), "100"); }},
      {"head_answered_chunked_claims_no_length",
       "HEAD /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", true,
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
       false, 200, "", 1, false,
       [](const client_response& r) {
         EXPECT_FALSE(r.headers.contains("content-length")) << r.head;  // not "0": unknown
       }},
      {"head_answered_with_a_body", "HEAD /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", true,
       length_response("hello"), false, 200, "", 2},
      {"no_content", models, false, "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", 1, false,
       [](const client_response& r) { EXPECT_FALSE(r.headers.contains("content-length")); }},
      {"no_content_with_a_body", models, false,
       "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello", false, 204, "", 2},
      {"not_modified_with_a_length", models, false,
       "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", false, 304, "", 1},
      // Framing faults: refused, the connection closed.
      {"te_and_cl", models, false,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
       false, 502, "", 2, true},
      {"te_not_chunked", models, false,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false, 502,
       "", 2, true},
      {"te_in_http_1_0", models, false,
       "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", false, 502, "", 2,
       true},
      {"two_lengths", models, false,
       "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x", false, 502, "", 2, true},
      {"bad_chunk", models, false,
       "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", false, 502, "", 2,
       true},
      {"bad_status", models, false, "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\n{}", false, 502, "",
       2, true},
      {"obs_fold", models, false,
       "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\n{}", false, 502, "", 2, true},
      {"bare_lf", models, false, "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", false, 502, "", 2, true},
      {"nul_in_a_field", models, false,
       std::string("HTTP/1.1 200 OK\r\nX-A: a") + '\0' + "b\r\nContent-Length: 2\r\n\r\n{}", false, 502, "",
       2, true},
      {"head_over_64_kib", models, false,
       "HTTP/1.1 200 OK\r\nX-Big: " + std::string(70000, 'b') + "\r\nContent-Length: 2\r\n\r\n{}",
       false, 502, "", 2, true},
      {"not_http_at_all", models, false, "SSH-2.0-OpenSSH_9.2\r\n\r\n", false, 502, "", 2, true},
      // Bodies read to their end, and what that allows.
      {"chunked_with_trailers", models, false,
       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
       "2\r\n{}\r\n0\r\nX-Trailer: t\r\n\r\n",
       false, 200, "{}", 1, false,
       [](const client_response& r) { EXPECT_FALSE(r.headers.contains("x-trailer")); }},
      {"close_delimited", models, false, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}",
       true, 200, "{}", 2},
      {"http_1_0_without_keep_alive", models, false,
       "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", false, 200, "{}", 2},
      {"connection_close", models, false, length_response("{}", "Connection: close\r\n"), false, 200,
       "{}", 2},
  };
}

class hostile_upstream : public ::testing::TestWithParam<upstream_case> {};

TEST_P(hostile_upstream, the_client_gets_its_own_answer_and_so_does_the_next) {
  const auto& c = GetParam();
  std::atomic<int> served{0};
  hostile_env env({}, [&](const seen_request& r) {
    if (served++ == 0) {
      return upstream_reply{c.first_reply, c.close_after};
    }
    return upstream_reply{ok_response("next:" + r.target)};
  });
  const auto r = exchange(env.port(), c.request, c.head);
  ASSERT_TRUE(r) << "no answer";
  EXPECT_EQ(r->status, c.status) << r->head << r->body;
  EXPECT_TRUE(r->complete);
  if (!c.any_body) {
    EXPECT_EQ(r->body, c.body);
  }
  if (c.status == 502) {
    EXPECT_EQ(r->header("content-type"), "application/json");
  }
  if (c.check) {
    c.check(*r);
  }
  // The next request gets its own answer, on a reused connection only when the first was read
  // exactly to its end and nothing else came.
  const auto next = exchange(env.port(), get("/v1/models", "X-Next: 1\r\n"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200U) << next->body;
  EXPECT_EQ(next->body, R"({"ok":"next:/v1/models"})");
  const auto seen = env.upstream.requests();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[1].connection, c.next_connection);
  EXPECT_TRUE(seen[1].has("x-next"));
}

INSTANTIATE_TEST_SUITE_P(hostile, hostile_upstream, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// Bytes that arrive on an idle pooled connection retire it: they are never read as the answer
// to the next request.
TEST(hostile_upstream_idle, bytes_arriving_on_an_idle_connection_retire_it) {
  hostile_env env;
  auto first = exchange(env.port(), get("/v1/models"));
  ASSERT_TRUE(first && first->status == 200);
  ASSERT_EQ(env.upstream.connections(), 1U);
  env.upstream.send_on(1, length_response(R"({"stray":"for nobody"})"));
  const auto next = exchange(env.port(), get("/v1/models", "X-Next: 1\r\n"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200U);
  EXPECT_EQ(next->body, R"({"ok":"/v1/models"})");
  const auto seen = env.upstream.requests();
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[1].connection, 2U);
  // Counted at the worker's next housekeeping tick.
  EXPECT_TRUE(test::eventually([&] {
    return test::metric_value(env.admin_port(), "nines_upstream_idle_closed_total{upstream=\"u0\","
                                          "reason=\"unsolicited_bytes\"}") == 1;
  }));
}

TEST(hostile_upstream_idle, an_idle_connection_the_upstream_closed_is_not_used) {
  std::atomic<int> served{0};
  hostile_env env({}, [&](const seen_request& r) {
    return upstream_reply{ok_response(r.target), served++ == 0};  // the first one closes after
  });
  auto first = exchange(env.port(), get("/v1/models"));
  ASSERT_TRUE(first && first->status == 200);
  ASSERT_TRUE(env.upstream.wait_closed(1, std::chrono::steady_clock::now()));
  const auto next = exchange(env.port(), get("/v1/models"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200U);
  EXPECT_EQ(env.upstream.requests().back().connection, 2U);
}

}  // namespace
}  // namespace nines::hostile
