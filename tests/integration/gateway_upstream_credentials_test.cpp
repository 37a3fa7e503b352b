// Upstream credentials that rotate: several keys (a refused one cools down and the request moves
// on), a key file re-read when it changes, and OAuth2 client-credentials tokens refreshed before
// they expire and once more when refused. mock-llm plays the model server that checks keys and
// the token endpoint that issues them. No secret appears in any output.

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "harness.hpp"

namespace nines::test {
namespace {

// A file in this test process's own folder, removed when the process exits.
std::string temp_file(const std::string& name, const std::string& content) {
  static const std::string dir = [] {
    static const std::string d = "/tmp/nines-creds-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    std::atexit([] { std::filesystem::remove_all(d); });
    return d;
  }();
  const auto path = dir + "/" + name;
  std::ofstream(path) << content;
  return path;
}

// Replaces `path` whole, by rename (as a mounted secret changes).
void replace_file(const std::string& path, const std::string& content) {
  std::ofstream(path + ".new") << content;
  std::filesystem::rename(path + ".new", path);
}

std::string upstream(const std::string& name, const server& mock, const std::string& extra) {
  return "\n[[upstreams]]\nname = \"" + name + "\"\nurl = \"" + mock.url() + "/v1\"\n" + extra;
}

// The API port from a gateway's "listening on http://127.0.0.1:P with ..." line.
unsigned short gw_port_of(process& gw) {
  const auto line = gw.wait_for_output("nines gateway listening on");
  const auto urls = line->substr(0, line->find(" with "));
  return static_cast<unsigned short>(std::stoi(urls.substr(urls.rfind(':') + 1)));
}

// Every place a secret could leak to: the gateway's output, its metrics, status and dashboard.
std::string everything_shown(const server& gw) {
  return gw.proc->output() + http_call(gw.admin_port, "GET", "/metrics").body +
         http_call(gw.admin_port, "GET", "/status").body +
         http_call(gw.admin_port, "GET", "/dashboard").body;
}

TEST(gateway_upstream_credentials, a_refused_key_of_three_cools_down_and_no_client_sees_a_401) {
  auto mock = start_mock({"--accept-keys", "sk-first-8f1c,sk-third-77a0"});
  auto gw = start_gateway(upstream(
      "u0", mock, "api_keys = [\"sk-first-8f1c\", \"sk-second-d3b9\", \"sk-third-77a0\"]\n"));
  for (int i = 0; i < 30; ++i) {
    const auto body = chat_body("key " + std::to_string(i), i % 2 == 0);
    const auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200U) << "request " << i << ": " << r.body;
    const auto text = i % 2 == 0 ? stream_text(sse_events(r.body)) : answer_text(r.body);
    EXPECT_EQ(text, expected_answer(body, true)) << "request " << i;
  }
  // The second key was sent once, then cooled down for the rest.
  EXPECT_EQ(mock_stat(mock.port, "unauthorized"), 1U);
  EXPECT_EQ(metric_value(gw.admin_port, "nines_upstream_credential_refusals_total{upstream="
                                        "\"u0\",credential=\"api_keys[1]\"}"),
            1U);
  EXPECT_EQ(metric_value(gw.admin_port, "nines_upstream_credentials_usable{upstream=\"u0\"}"), 2U);
  EXPECT_TRUE(gw.proc->wait_for_output("upstream u0 refused its credential api_keys[1] (status "
                                       "401): cooling down for 30 s"));
  const auto shown = everything_shown(gw);
  for (const char* secret : {"sk-first-8f1c", "sk-second-d3b9", "sk-third-77a0"}) {
    EXPECT_EQ(shown.find(secret), std::string::npos) << secret << " is shown somewhere";
  }
}

TEST(gateway_upstream_credentials, an_upstream_refusing_every_key_is_left_for_one_that_takes_its_own) {
  auto refusing = start_mock({"--accept-keys", "sk-other"});
  auto taking = start_mock({"--accept-keys", "sk-good"});
  auto gw = start_gateway(upstream("a", refusing, "api_key = \"sk-wrong\"\n") +
                          upstream("b", taking, "api_key = \"sk-good\"\npriority = 1\n"));
  for (int i = 0; i < 10; ++i) {
    const auto body = chat_body("moves on " + std::to_string(i), false);
    const auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200U) << r.body;
    EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  }
  // Once refused, the preferred upstream is avoided while its only key cools down.
  EXPECT_EQ(mock_stat(refusing.port, "unauthorized"), 1U);
}

TEST(gateway_upstream_credentials, when_no_key_anywhere_is_taken_the_client_gets_the_upstreams_401) {
  auto mock = start_mock({"--accept-keys", "sk-accepted"});
  auto gw = start_gateway(upstream("u0", mock, "api_keys = [\"sk-x1\", \"sk-x2\"]\n"));
  const auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("nobody", false));
  EXPECT_EQ(r.status, 401U) << r.body;
  EXPECT_NE(r.body.find("invalid_api_key"), std::string::npos) << r.body;
  EXPECT_EQ(mock_stat(mock.port, "unauthorized"), 2U) << "each key tried once";
}

TEST(gateway_upstream_credentials, a_key_file_is_read_again_when_it_changes) {
  auto mock = start_mock({"--accept-keys", "sk-rotated-2"});
  const auto key_file = temp_file("key", "sk-rotated-1\n");
  auto gw = start_gateway(upstream("u0", mock, "api_key_file = \"" + key_file + "\"\n"));
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("old", false)).status,
            401U);
  replace_file(key_file, "  sk-rotated-2  \n");
  EXPECT_TRUE(gw.proc->wait_for_output("api_key_file " + key_file + " changed: the new key is in use"));
  const auto body = chat_body("new", false);
  const auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  const auto sent = http_call(mock.port, "GET", "/mock/last-headers").body;
  EXPECT_NE(sent.find("\"authorization\":\"Bearer sk-rotated-2\""), std::string::npos) << sent;
  const auto shown = everything_shown(gw);
  EXPECT_EQ(shown.find("sk-rotated"), std::string::npos);
  std::filesystem::remove(key_file);
}

// A token endpoint issuing 3 s tokens while clients send requests for 7 s: no client sees a 401,
// and the endpoint is asked about once per token lifetime (refreshed at 2 s of 3).
TEST(gateway_upstream_credentials, oauth_tokens_are_refreshed_before_they_expire) {
  auto mock = start_mock({"--token-ttl-s", "3", "--oauth-client", "agent-fleet:cs-5e6f7a"});
  const auto secret_file = temp_file("client-secret", "cs-5e6f7a\n");
  auto gw = start_gateway(upstream(
      "u0", mock,
      "token_url = \"" + mock.url() + "/oauth/token\"\nclient_id = \"agent-fleet\"\n"
      "client_secret_file = \"" + secret_file + "\"\nscope = \"models.read\"\n"));
  ASSERT_TRUE(gw.proc->wait_for_output("OAuth token from"));
  const auto start = std::chrono::steady_clock::now();
  int sent = 0;
  int refused = 0;
  // Each answer takes 5 ms (mock-llm's time to first token): about 1,000 requests, at most 5,000.
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(7) && sent < 5000) {
    const auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("tok", false),
                             {{"x-mock-fault", "ttft_ms=5"}});
    refused += r.status == 200 ? 0 : 1;
    ++sent;
  }
  EXPECT_EQ(refused, 0) << "of " << sent;
  EXPECT_EQ(mock_stat(mock.port, "unauthorized"), 0U);
  const auto requests = mock_stat(mock.port, "token_requests");
  EXPECT_GE(requests, 4U) << "the 3 s tokens were refreshed";
  EXPECT_LE(requests, 5U) << "at most one token request per 2 s refresh period (+ the first)";
  // A refresh may be on its way: the gateway counts it once the answer is in.
  EXPECT_TRUE(eventually([&] {
    return metric_value(gw.admin_port, "nines_oauth_token_requests_total{client=\"agent-fleet\","
                                       "result=\"ok\"}") ==
           mock_stat(mock.port, "token_requests");
  }));
  const auto shown = everything_shown(gw);
  EXPECT_EQ(shown.find("cs-5e6f7a"), std::string::npos);
  EXPECT_EQ(shown.find("tok-"), std::string::npos) << "a token is shown somewhere";
  std::filesystem::remove(secret_file);
}

TEST(gateway_upstream_credentials, a_refused_token_is_refreshed_at_once_and_the_request_succeeds) {
  auto mock = start_mock({"--token-ttl-s", "3600"});
  const auto secret_file = temp_file("client-secret-2", "client-secret");
  auto gw = start_gateway(upstream(
      "u0", mock,
      "token_url = \"" + mock.url() + "/oauth/token\"\nclient_id = \"nines\"\n"
      "client_secret_file = \"" + secret_file + "\"\n"));
  ASSERT_TRUE(gw.proc->wait_for_output("OAuth token from"));
  ASSERT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("a", false)).status, 200U);
  // The identity provider revokes every token: the next request is refused once, the gateway
  // fetches a new token and sends the request again with it.
  ASSERT_EQ(http_call(mock.port, "POST", "/mock/revoke-tokens").status, 200U);
  const auto body = chat_body("after revocation", false);
  const auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
  EXPECT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  EXPECT_EQ(mock_stat(mock.port, "unauthorized"), 1U);
  EXPECT_EQ(mock_stat(mock.port, "token_requests"), 2U);
  // A clean stop with a token source running (its timer outlives nothing it needs).
  gw.proc->signal(SIGTERM);
  EXPECT_EQ(gw.proc->wait_exit(), 0) << gw.proc->output();
  std::filesystem::remove(secret_file);
}

// A reload that takes an OAuth upstream out stops its token source: the client secret is not
// sent again to an endpoint no upstream uses.
TEST(gateway_upstream_credentials, a_token_source_no_upstream_uses_after_a_reload_stops) {
  auto idp = start_mock({"--token-ttl-s", "2"});
  auto plain = start_mock();
  const auto secret_file = temp_file("client-secret-3", "client-secret");
  const auto path = temp_file("reload.toml", "");
  const std::string head = "[gateway]\nlisten = \"127.0.0.1:0\"\nworkers = 1\n"
                           "[admin]\nlisten = \"127.0.0.1:0\"\n";
  const auto oauth = upstream("o", idp, "token_url = \"" + idp.url() + "/oauth/token\"\n"
                                         "client_id = \"nines\"\nclient_secret_file = \"" +
                                             secret_file + "\"\n");
  replace_file(path, head + oauth + upstream("p", plain, ""));
  process gw({NINES_BINARY, "gateway", "--config", path});
  ASSERT_TRUE(gw.wait_for_output("OAuth token from"));
  replace_file(path, head + upstream("p", plain, ""));
  ASSERT_TRUE(gw.wait_for_output("no upstream uses it any more; stopped"));
  const auto asked = mock_stat(idp.port, "token_requests");
  // Its 2 s tokens would have been refreshed every second: two seconds of nothing say it stopped.
  ASSERT_TRUE(gw.wait_for_output("configuration reloaded"));
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(http_call(gw_port_of(gw), "POST", "/v1/chat/completions", chat_body("p", false)).status,
              200U);
  }
  // At most the one that may have been on its way when the source stopped.
  EXPECT_LE(mock_stat(idp.port, "token_requests"), asked + 1);
  std::filesystem::remove(secret_file);
  std::filesystem::remove(path);
}

TEST(gateway_upstream_credentials, check_refuses_ambiguous_or_unsafe_credentials_and_names_the_file) {
  const auto check = [](const std::string& toml) {
    const auto path = temp_file("check.toml", toml);
    process p({NINES_BINARY, "gateway", "--config", path, "--check"});
    const auto code = p.wait_exit();
    return std::pair{code.value_or(-1), p.output()};
  };
  const std::string head = "[[upstreams]]\nurl = \"http://127.0.0.1:9/v1\"\n";
  {
    auto [code, out] = check(head + "api_key = \"a\"\napi_keys = [\"b\"]\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("give at most one of api_key, api_keys, api_key_file and token_url"),
              std::string::npos)
        << out;
  }
  {
    auto [code, out] = check(head + "api_key_file = \"/nonexistent/key\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("upstreams[0].api_key_file: /nonexistent/key cannot be read"),
              std::string::npos)
        << out;
  }
  {
    auto [code, out] = check(head + "token_url = \"http://idp.example/token\"\nclient_id = \"c\"\n"
                                    "client_secret_file = \"/nonexistent/secret\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("upstreams[0].token_url: must be https:// beyond loopback"),
              std::string::npos)
        << out;
  }
  {
    auto [code, out] = check(head + "token_url = \"https://idp.example/token\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("upstreams[0].client_id: is required with token_url"), std::string::npos)
        << out;
    EXPECT_NE(out.find("upstreams[0].client_secret_file: is required with token_url"),
              std::string::npos)
        << out;
  }
  {
    auto [code, out] = check(head + "api_keys = [\"sk-a\", \"sk-a\"]\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("repeats an earlier key"), std::string::npos) << out;
    EXPECT_EQ(out.find("sk-a"), std::string::npos) << "a key is echoed: " << out;
  }
  {
    auto [code, out] = check(head + "api_key = \"sk-with\\r\\nx-injected: 1\"\n");
    EXPECT_EQ(code, 2);
    EXPECT_NE(out.find("must be visible ASCII"), std::string::npos) << out;
  }
  const auto good = temp_file("good-key", "sk-good\n");
  auto [ok, out] = check(head + "api_key_file = \"" + good + "\"\n");
  EXPECT_EQ(ok, 0) << out;
}

}  // namespace
}  // namespace nines::test
