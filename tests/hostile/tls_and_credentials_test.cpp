// Hostile peers of what issue 11 added: clients of the TLS listener that send anything but a
// proper handshake, a token endpoint that answers with bytes meant to break the next request, and
// an upstream that refuses every credential with a huge body. Each case asserts what the client
// got and what the upstream received.

#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "../integration/tls_fixtures.hpp"
#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

std::string tls_section(const std::string& extra = {}) {
  return "[tls]\ncert_file = \"" + test::tls_fixture("chain.pem") + "\"\nkey_file = \"" +
         test::tls_fixture("leaf.key") + "\"\n" + extra;
}

// A real TLS client still gets its answer: the listener survived whatever came before.
bool tls_client_served(unsigned short port) {
  test::process curl({"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert",
                      test::tls_fixture("ca.pem"), "https://localhost:" + std::to_string(port) +
                                                       "/v1/models"});
  return curl.wait_exit(milliseconds(15000)) == 0 &&
         curl.output().find("/v1/models") != std::string::npos;  // the upstream's echo
}

TEST(tls_listener, bytes_that_are_neither_tls_nor_http_are_closed_unanswered) {
  hostile_env env("[timeouts]\ntls_handshake_ms = 500\n" + tls_section());
  const auto port = env.gateway.tls_port;
  for (const std::string& junk :
       {std::string("\x00\x01\x02\x03 not a handshake\r\n\r\n", 24),
        std::string("\x16\x03\x01\xff\xff") + std::string(4096, 'A'),  // a record claiming 64 KiB
        std::string("\x16\x03\x03\x00\x05\x01\x00\x00\x01\x00", 10),   // a ClientHello of nothing
        std::string(20000, '\x16')}) {
    raw_client c(port);
    c.send(junk);
    EXPECT_TRUE(c.wait_closed(milliseconds(5000)));
    EXPECT_EQ(c.pending().find("HTTP/1.1 200"), std::string::npos);
  }
  EXPECT_EQ(env.upstream.request_count(), 0U);
  EXPECT_TRUE(tls_client_served(port));
  EXPECT_EQ(env.upstream.request_count(), 1U);
}

TEST(tls_listener, two_hundred_unfinished_handshakes_neither_block_nor_outlive_their_deadline) {
  hostile_env env("[timeouts]\ntls_handshake_ms = 300\n" + tls_section());
  const auto port = env.gateway.tls_port;
  std::vector<std::unique_ptr<raw_client>> stalled;
  for (int i = 0; i < 200; ++i) {
    stalled.push_back(std::make_unique<raw_client>(port));
    stalled.back()->send(std::string("\x16\x03\x01\x02\x00\x01", 6));  // a hello's first bytes
  }
  // One worker, 200 handshakes waiting: a real client is served meanwhile.
  EXPECT_TRUE(tls_client_served(port));
  for (auto& c : stalled) {
    EXPECT_TRUE(c->wait_closed(milliseconds(10000)));
  }
  // Counted just after the close the clients saw.
  EXPECT_TRUE(test::eventually([&] {
    return test::metric_value(env.admin_port(),
                              "nines_tls_handshakes_total{result=\"timeout\"}") == 200U;
  })) << test::http_call(env.admin_port(), "GET", "/metrics").body;
}

// --- a hostile token endpoint ------------------------------------------------------------------

// The scripted upstream is the token endpoint too: /oauth/token answers `token_answer`, the model
// routes answer 200.
scripted_upstream::script token_endpoint(std::string token_answer) {
  return [token_answer](const seen_request& r) -> upstream_reply {
    if (r.target == "/oauth/token") {
      return {token_answer, true};
    }
    return {ok_response(r.target)};
  };
}

std::string json_answer(const std::string& body, unsigned status = 200) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

class hostile_token : public ::testing::TestWithParam<std::pair<const char*, std::string>> {};

TEST_P(hostile_token, an_unusable_token_is_never_sent_and_the_log_says_why) {
  const std::string secret_file = test::tls_fixture_dir() + "/client-secret-" + GetParam().first;
  { std::ofstream(secret_file) << "client-secret\n"; }
  // The upstream's url names the scripted upstream; token_url points at it too.
  scripted_upstream token_upstream(token_endpoint(GetParam().second));
  hostile_env env({}, echo_target, "max_attempts = 1\n",
                  "token_url = \"" + token_upstream.url() + "/oauth/token\"\nclient_id = \"c\"\n"
                  "client_secret_file = \"" + secret_file + "\"\n");
  ASSERT_TRUE(env.gateway.proc->wait_for_output("OAuth token from"));
  const auto r = exchange(env.port(), post("/v1/embeddings", json_body));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 502U) << r->body;
  EXPECT_NE(r->body.find("no usable credential"), std::string::npos) << r->body;
  EXPECT_EQ(env.upstream.request_count(), 0U) << "nothing went upstream without a credential";
  EXPECT_EQ(env.gateway.proc->output().find("x-injected"), std::string::npos);
}

// The control: the same set-up with a well-formed token gets through and carries it.
TEST(hostile_credentials, a_well_formed_token_is_what_goes_upstream) {
  const std::string secret_file = test::tls_fixture_dir() + "/client-secret-good";
  { std::ofstream(secret_file) << "client-secret\n"; }
  scripted_upstream token_upstream(token_endpoint(
      json_answer(R"({"access_token":"tok-good.1","token_type":"bearer","expires_in":60})")));
  hostile_env env({}, echo_target, "max_attempts = 1\n",
                  "token_url = \"" + token_upstream.url() + "/oauth/token\"\nclient_id = \"c\"\n"
                  "client_secret_file = \"" + secret_file + "\"\nscope = \"a b\"\n");
  ASSERT_TRUE(env.gateway.proc->wait_for_output("OAuth token from"));
  const auto r = exchange(env.port(), post("/v1/embeddings", json_body));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200U) << r->body;
  ASSERT_EQ(env.upstream.request_count(), 1U);
  EXPECT_EQ(env.upstream.requests()[0].headers.at("authorization"), "Bearer tok-good.1");
  // What the token endpoint was sent: the grant, the scope form-encoded, the client in Basic.
  const auto asked = token_upstream.requests().at(0);
  EXPECT_EQ(asked.method, "POST");
  EXPECT_EQ(asked.body, "grant_type=client_credentials&scope=a%20b");
  EXPECT_EQ(asked.headers.at("authorization"), "Basic YzpjbGllbnQtc2VjcmV0");  // c:client-secret
  EXPECT_EQ(asked.headers.at("content-type"), "application/x-www-form-urlencoded");
}

INSTANTIATE_TEST_SUITE_P(
    answers, hostile_token,
    ::testing::Values(
        std::pair{"crlf", json_answer(R"({"access_token":"tok\r\nx-injected: 1","token_type":"Bearer","expires_in":60})")},
        std::pair{"space", json_answer(R"({"access_token":"tok with space","expires_in":60})")},
        std::pair{"empty", json_answer(R"({"access_token":"","expires_in":60})")},
        std::pair{"not_bearer", json_answer(R"({"access_token":"tok","token_type":"mac","expires_in":60})")},
        std::pair{"number", json_answer(R"({"access_token":12345,"expires_in":60})")},
        std::pair{"huge", json_answer(R"({"access_token":")" + std::string(200000, 'a') + R"("})")},
        std::pair{"not_json", json_answer("<html>login</html>")},
        std::pair{"refused", json_answer(R"({"error":"invalid_client\r\nx-injected: 1"})", 401)},
        std::pair{"broken_http", std::string("HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n{")}),
    [](const auto& info) { return std::string(info.param.first); });

TEST(hostile_credentials, an_upstream_refusing_every_key_with_a_huge_body_costs_three_tries) {
  const std::string refusal = json_answer(
      R"({"error":{"message":")" + std::string(1 << 20, 'x') + R"(","code":"invalid_api_key"}})",
      401);
  hostile_env env({}, [refusal](const seen_request&) { return upstream_reply{refusal, true}; },
                  "max_attempts = 3\n",
                  "api_keys = [\"sk-1\", \"sk-2\", \"sk-3\", \"sk-4\", \"sk-5\"]\n");
  const auto r = exchange(env.port(), post("/v1/embeddings", json_body));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401U);
  EXPECT_TRUE(r->complete);
  EXPECT_LE(r->body.size(), 80U * 1024) << "the kept answer is bounded (64 KiB and one read)";
  const auto seen = env.upstream.requests();
  EXPECT_EQ(seen.size(), 3U) << "three credentials per attempt, and no second round";
  std::set<std::string> sent;
  for (const auto& s : seen) {
    sent.insert(s.headers.at("authorization"));
  }
  EXPECT_EQ(sent.size(), 3U) << "each a different key";
}

}  // namespace
}  // namespace nines::hostile
