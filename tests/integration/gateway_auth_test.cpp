// Access control with client keys (docs/config.md, [auth]), the admin listener, and the secure
// defaults: the real gateway in front of a real mock, keys files written here, secrets made by
// `nines keys new`. Every refusal is checked on both sides: what the client got, and that the
// upstream was not contacted.

#include <boost/json.hpp>
#include <fstream>
#include <gtest/gtest.h>
#include <regex>
#include <thread>
#include <unistd.h>

#include "core/access/secret_digest.hpp"
#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

std::string temp_file(const std::string& name, const std::string& text) {
  static int counter = 0;
  const std::string path = "/tmp/nines-auth-" + std::to_string(::getpid()) + "-" +
                           std::to_string(++counter) + "-" + name;
  std::ofstream(path + ".tmp") << text;
  std::rename((path + ".tmp").c_str(), path.c_str());  // whole, at once (it may be watched)
  return path;
}

std::string key_entry(const std::string& id, const std::string& secret, const std::string& extra) {
  return "[[keys]]\nid = \"" + id + "\"\nhash = \"" +
         core::format_secret_digest(core::sha256_of(secret)) + "\"\n" + extra + "\n";
}

std::map<std::string, std::string> bearer(const std::string& secret) {
  return {{"Authorization", "Bearer " + secret}};
}

std::string error_code(const response& r) {
  const auto v = json::parse(r.body);
  return std::string(v.at("error").at("code").as_string());
}

class gateway_auth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mock_ = new server(start_mock());
    keys_path_ = new std::string(temp_file(
        "keys.toml",
        key_entry("agent-a", "secret-a-0123456789", "models = [\"*\"]") +
            key_entry("agent-b", "secret-b-0123456789", "models = [\"qwen*\"]") +
            key_entry("limited", "secret-l-0123456789",
                      "models = [\"*\"]\nrequests_per_minute = 5") +
            key_entry("tokens", "secret-t-0123456789",
                      "models = [\"*\"]\ntokens_per_minute = 150") +
            key_entry("old", "secret-o-0123456789",
                      "models = [\"*\"]\nexpires = 2020-01-01T00:00:00Z")));
    gw_ = new server(start_gateway("[auth]\nkeys_file = \"" + *keys_path_ + "\"\n" +
                                   upstreams_toml({mock_->url()})));
  }
  static void TearDownTestSuite() {
    delete gw_;
    delete mock_;
    delete keys_path_;
  }
  static std::uint64_t upstream_requests() { return mock_stat(mock_->port, "requests"); }
  static server* mock_;
  static server* gw_;
  static std::string* keys_path_;
};
server* gateway_auth::mock_ = nullptr;
server* gateway_auth::gw_ = nullptr;
std::string* gateway_auth::keys_path_ = nullptr;

TEST_F(gateway_auth, no_unknown_or_expired_key_is_a_401_and_reaches_no_upstream) {
  const auto body = chat_body("hello", false);
  struct c {
    std::map<std::string, std::string> headers;
    std::string code;
  };
  for (const auto& [headers, code] :
       {c{{}, "missing_api_key"}, c{bearer("not-a-key"), "invalid_api_key"},
        c{{{"Authorization", "Basic YTpi"}}, "invalid_api_key"},
        c{bearer("secret-o-0123456789"), "expired_api_key"}}) {
    const auto before = upstream_requests();
    const auto r = http_call(gw_->port, "POST", "/v1/chat/completions", body, headers);
    EXPECT_EQ(r.status, 401U) << r.body;
    EXPECT_EQ(error_code(r), code);
    EXPECT_EQ(r.headers.at("www-authenticate"), "Bearer realm=\"nines\"");
    EXPECT_EQ(upstream_requests(), before + 1) << "only this stats call";
  }
  // Health and readiness stay open: load balancers probe them without keys.
  EXPECT_EQ(http_call(gw_->port, "GET", "/healthz").status, 200U);
  EXPECT_EQ(http_call(gw_->port, "GET", "/readyz").status, 200U);
}

TEST_F(gateway_auth, a_valid_key_gets_through_and_its_secret_never_goes_upstream) {
  const auto body = chat_body("open settings", false);
  const auto r = http_call(gw_->port, "POST", "/v1/chat/completions", body,
                           bearer("secret-a-0123456789"));
  ASSERT_EQ(r.status, 200U) << r.body;
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  const auto seen = json::parse(http_call(mock_->port, "GET", "/mock/last-headers").body).as_object();
  EXPECT_FALSE(seen.contains("authorization")) << json::serialize(seen);
}

TEST_F(gateway_auth, a_model_the_key_does_not_allow_is_a_403_before_any_upstream) {
  const auto before = upstream_requests();
  const auto r = http_call(gw_->port, "POST", "/v1/chat/completions",
                           R"({"model":"gpt-4o","messages":[{"role":"user","content":"x"}]})",
                           bearer("secret-b-0123456789"));
  EXPECT_EQ(r.status, 403U);
  EXPECT_EQ(error_code(r), "model_not_allowed");
  EXPECT_EQ(upstream_requests(), before + 1);
  const auto ok = http_call(gw_->port, "POST", "/v1/chat/completions",
                            R"({"model":"qwen2.5-vl","messages":[{"role":"user","content":"x"}]})",
                            bearer("secret-b-0123456789"));
  EXPECT_EQ(ok.status, 200U);
}

TEST_F(gateway_auth, over_requests_per_minute_is_a_429_with_retry_after_and_ratelimit_headers) {
  int ok = 0;
  std::optional<response> refused;
  for (int i = 0; i < 8 && !refused; ++i) {
    auto r = http_call(gw_->port, "GET", "/v1/models", "", bearer("secret-l-0123456789"));
    if (r.status == 200) {
      ++ok;
    } else {
      refused = std::move(r);
    }
  }
  EXPECT_EQ(ok, 5);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 429U);
  EXPECT_EQ(error_code(*refused), "rate_limit_exceeded");
  const auto retry = std::stoi(refused->headers.at("retry-after"));
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 60);
  EXPECT_EQ(refused->headers.at("x-ratelimit-limit-requests"), "5");
  EXPECT_EQ(refused->headers.at("x-ratelimit-remaining-requests"), "0");
  EXPECT_FALSE(refused->headers.at("x-ratelimit-reset-requests").empty());
}

TEST_F(gateway_auth, tokens_are_reserved_then_settled_from_the_answers_usage) {
  // 150 tokens a minute; each request reserves its max_tokens (90): two reservations would not
  // fit. The mock's answer uses about 30 (its usage says), so once the first is settled the
  // second fits.
  const auto body = chat_body("tap", false, R"("max_tokens":90)");
  for (int i = 0; i < 2; ++i) {
    const auto r = http_call(gw_->port, "POST", "/v1/chat/completions", body,
                             bearer("secret-t-0123456789"));
    ASSERT_EQ(r.status, 200U) << i << ": " << r.body;
  }
  // Reserving more than the whole minute allows never fits.
  const auto big = http_call(gw_->port, "POST", "/v1/chat/completions",
                             chat_body("tap", false, R"("max_tokens":500)"),
                             bearer("secret-t-0123456789"));
  EXPECT_EQ(big.status, 429U);
  EXPECT_EQ(big.headers.at("x-ratelimit-limit-tokens"), "150");
}

TEST_F(gateway_auth, two_authorization_headers_are_refused_as_ambiguous) {
  // Which one would the gateway check, and which would a server behind it read?
  const auto out = raw_exchange(
      gw_->port, "GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer secret-a-0123456789\r\n"
                 "Authorization: Bearer other\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(out.starts_with("HTTP/1.1 401")) << out;
}

TEST_F(gateway_auth, metrics_status_and_dashboard_are_on_the_admin_listener_only) {
  EXPECT_EQ(http_call(gw_->port, "GET", "/v1/models").status, 401U);  // counted below
  for (const char* path : {"/metrics", "/status", "/dashboard"}) {
    EXPECT_EQ(http_call(gw_->port, "GET", path, "", bearer("secret-a-0123456789")).status, 404U)
        << path;
    EXPECT_EQ(http_call(gw_->admin_port, "GET", path).status, 200U) << path;
  }
  EXPECT_GE(metric_value(gw_->admin_port, R"(nines_auth_refusals_total{reason="missing"})"), 1U);
}

TEST(gateway_keys, max_concurrent_refuses_the_request_over_it_while_one_is_in_flight) {
  auto mock = start_mock({"--faults", "tpot_ms=50"});
  const auto path = temp_file("single.toml", key_entry("single", "single-0123456789",
                                                       "models = [\"*\"]\nmax_concurrent = 1"));
  auto gw = start_gateway("[auth]\nkeys_file = \"" + path + "\"\n" + upstreams_toml({mock.url()}));
  {
    stream_reader first(gw.port, "/v1/chat/completions", chat_body("long", true), false,
                        bearer("single-0123456789"));
    ASSERT_TRUE(first.read_events(2));  // in flight, and streaming
    const auto second = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("b", false),
                                  bearer("single-0123456789"));
    EXPECT_EQ(second.status, 429U);
    EXPECT_EQ(error_code(second), "concurrency_limit_exceeded");
    EXPECT_EQ(second.headers.at("retry-after"), "1");
    ASSERT_TRUE(first.read_events(1000) || first.ended());
  }
  // The first one ended: its place is free again.
  EXPECT_TRUE(eventually([&] {
    return http_call(gw.port, "GET", "/v1/models", "", bearer("single-0123456789")).status == 200;
  }));
}

TEST(gateway_admin, an_admin_key_guards_the_admin_listener) {
  auto mock = start_mock();
  const std::string secret = "admin-secret-0123456789";
  auto gw = start_gateway("[admin]\nlisten = \"127.0.0.1:0\"\nkey_hash = \"" +
                          core::format_secret_digest(core::sha256_of(secret)) + "\"\n" +
                          upstreams_toml({mock.url()}));
  EXPECT_EQ(http_call(gw.admin_port, "GET", "/metrics").status, 401U);
  EXPECT_EQ(http_call(gw.admin_port, "GET", "/metrics", "", bearer("wrong")).status, 401U);
  EXPECT_EQ(http_call(gw.admin_port, "GET", "/metrics", "", bearer(secret)).status, 200U);
}

// A key being rotated: both secrets work in the grace window; after the keys file is rewritten
// with the window over (a reload, as for the config), only the new one does.
TEST(gateway_keys, rotation_grace_and_reload_of_the_keys_file) {
  auto mock = start_mock();
  const auto digest = [](const std::string& s) { return core::format_secret_digest(core::sha256_of(s)); };
  const auto write = [&](const std::string& previous_expires) {
    return temp_file("rotate.toml", "[[keys]]\nid = \"rot\"\nhash = \"" + digest("new-0123456789") +
                                        "\"\nprevious_hash = \"" + digest("old-0123456789") +
                                        "\"\nprevious_expires = " + previous_expires +
                                        "\nmodels = [\"*\"]\n");
  };
  const auto path = write("2099-01-01T00:00:00Z");
  auto gw = start_gateway("[auth]\nkeys_file = \"" + path + "\"\n" + upstreams_toml({mock.url()}));
  EXPECT_EQ(http_call(gw.port, "GET", "/v1/models", "", bearer("new-0123456789")).status, 200U);
  EXPECT_EQ(http_call(gw.port, "GET", "/v1/models", "", bearer("old-0123456789")).status, 200U);
  std::rename(write("2020-01-01T00:00:00Z").c_str(), path.c_str());
  ASSERT_TRUE(gw.proc->wait_for_output("configuration reloaded (the keys file changed)"));
  const auto old = http_call(gw.port, "GET", "/v1/models", "", bearer("old-0123456789"));
  EXPECT_EQ(old.status, 401U);
  EXPECT_EQ(error_code(old), "expired_api_key");
  EXPECT_EQ(http_call(gw.port, "GET", "/v1/models", "", bearer("new-0123456789")).status, 200U);
  // A broken keys file is refused with its problems; the keys in effect stay.
  std::rename(temp_file("broken.toml", "[[keys]]\nid = \"x\"\nhash = \"in-clear\"\n").c_str(),
              path.c_str());
  ASSERT_TRUE(gw.proc->wait_for_output("the running configuration and keys stay"));
  EXPECT_EQ(http_call(gw.port, "GET", "/v1/models", "", bearer("new-0123456789")).status, 200U);
}

TEST(gateway_keys, hedging_and_journaling_by_header_are_a_keys_right) {
  auto mock = start_mock();
  const auto path = temp_file(
      "rights.toml", key_entry("plain", "plain-0123456789", "models = [\"*\"]") +
                         key_entry("journaler", "journal-0123456789",
                                   "models = [\"*\"]\nallow_journal = true"));
  auto gw = start_gateway("[auth]\nkeys_file = \"" + path + "\"\n[journal]\nmode = \"keyed\"\n" +
                          upstreams_toml({mock.url()}));
  auto headers = bearer("plain-0123456789");
  headers["Idempotency-Key"] = "k-1";
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("a", true), headers).status,
            200U);
  EXPECT_EQ(metric_value(gw.admin_port, "nines_journal_entries"), 0U) << "not journaled";
  headers = bearer("journal-0123456789");
  headers["Idempotency-Key"] = "k-2";
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("b", true), headers).status,
            200U);
  EXPECT_EQ(metric_value(gw.admin_port, "nines_journal_entries"), 1U);
}

// `nines keys new` prints a secret once and an entry that holds only its digest; the entry works.
TEST(gateway_keys, keys_new_makes_a_working_key) {
  process keys({NINES_BINARY, "keys", "new", "--id", "fresh", "--models", "mock*"});
  ASSERT_EQ(keys.wait_exit(), 0);
  const auto out = keys.output();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\\n  (nk-[A-Za-z0-9_-]{43})\\n")));
  const std::string secret = m[1];
  const auto entry = out.substr(out.find("[[keys]]"));
  EXPECT_EQ(entry.find(secret), std::string::npos);
  auto mock = start_mock();
  auto gw = start_gateway("[auth]\nkeys_file = \"" + temp_file("new.toml", entry) + "\"\n" +
                          upstreams_toml({mock.url()}));
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", false),
                      bearer(secret)).status,
            200U);  // chat_body's model is "mock-model"
}

// Beyond loopback nobody gets in without a key: such a config is refused (exit 2) unless it says
// mode = "open"; a missing or broken keys file is named with its problems; credentials in an
// upstream URL are refused. All with --check: nothing listens.
TEST(gateway_keys, check_refuses_what_would_be_unsafe_or_broken) {
  const auto check = [](const std::string& toml) {
    const auto path = temp_file("check.toml", toml);
    process p({NINES_BINARY, "gateway", "--config", path, "--check"});
    const auto code = p.wait_exit();
    return std::pair{code.value_or(-1), p.output()};
  };
  const std::string up = "[[upstreams]]\nurl = \"http://127.0.0.1:9/v1\"\n";
  auto [open_wide, out1] = check("[gateway]\nlisten = \"0.0.0.0:8080\"\n" + up);
  EXPECT_EQ(open_wide, 2);
  EXPECT_NE(out1.find("gateway.listen: listens beyond loopback"), std::string::npos) << out1;
  auto [said_open, out2] = check("[gateway]\nlisten = \"0.0.0.0:8080\"\n[auth]\nmode = \"open\"\n" + up);
  EXPECT_EQ(said_open, 0) << out2;
  auto [missing, out3] = check("[auth]\nkeys_file = \"/nonexistent/keys.toml\"\n" + up);
  EXPECT_EQ(missing, 2);
  EXPECT_NE(out3.find("/nonexistent/keys.toml"), std::string::npos) << out3;
  const auto broken = temp_file("broken-keys.toml", "[[keys]]\nid = \"a\"\nhash = \"plain\"\n");
  auto [bad, out4] = check("[auth]\nkeys_file = \"" + broken + "\"\n" + up);
  EXPECT_EQ(bad, 2);
  EXPECT_NE(out4.find(broken + ":3:8: keys[0].hash"), std::string::npos) << out4;
  auto [userinfo, out5] = check("[[upstreams]]\nurl = \"http://user:pw@127.0.0.1:9/v1\"\n");
  EXPECT_EQ(userinfo, 2);
  EXPECT_NE(out5.find("must not hold credentials"), std::string::npos) << out5;
  EXPECT_EQ(out5.find("pw@"), std::string::npos) << "not even in the error";
  auto [admin_wide, out6] = check("[admin]\nlisten = \"0.0.0.0:9901\"\n" + up);
  EXPECT_EQ(admin_wide, 2);
  EXPECT_NE(out6.find("admin.key_hash"), std::string::npos) << out6;
  auto [no_ca, out7] = check("[[upstreams]]\nurl = \"https://127.0.0.1:9/v1\"\nca_file = "
                             "\"/nonexistent/ca.pem\"\n");
  EXPECT_EQ(no_ca, 2);
  EXPECT_NE(out7.find("upstreams[0].ca_file: cannot be read"), std::string::npos) << out7;
}

// No secret anywhere: every client secret used above, and the upstream's api_key, are looked for
// in the gateway's logs, /metrics, /status and the answers it gave.
TEST(gateway_keys, no_secret_in_any_output) {
  auto mock = start_mock();
  const std::vector<std::string> secrets{"leak-check-secret-1", "leak-check-secret-2"};
  const std::string api_key = "upstream-api-key-abcdef";
  const auto path = temp_file("leak.toml", key_entry("l1", secrets[0], "models = [\"*\"]\nrequests_per_minute = 2") +
                                               key_entry("l2", secrets[1], "models = [\"nope\"]"));
  auto gw = start_gateway("[auth]\nkeys_file = \"" + path + "\"\n[journal]\nmode = \"keyed\"\n"
                          "\n[[upstreams]]\nname = \"u0\"\nurl = \"" + mock.url() +
                          "/v1\"\napi_key = \"" + api_key + "\"\n");
  std::string answers;
  for (const auto& s : secrets) {
    for (int i = 0; i < 3; ++i) {
      auto headers = bearer(s);
      headers["Idempotency-Key"] = "leak-" + std::to_string(i);
      answers += http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", i % 2 == 0), headers).body;
    }
  }
  answers += http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", false),
                       bearer("leak-check-unknown")).body;
  // The upstream got the gateway's credential, not the client's.
  const auto seen = json::parse(http_call(mock.port, "GET", "/mock/last-headers").body).as_object();
  EXPECT_EQ(seen.at("authorization").as_string(), "Bearer " + api_key);
  const auto metrics = http_call(gw.admin_port, "GET", "/metrics").body;
  const auto status = http_call(gw.admin_port, "GET", "/status").body;
  gw.proc->signal(SIGTERM);
  ASSERT_TRUE(gw.proc->wait_exit());
  const auto logs = gw.proc->output();
  EXPECT_NE(logs.find("\"key\":\"l1\""), std::string::npos) << "the key's id is logged";
  for (const auto& s : std::vector<std::string>{secrets[0], secrets[1], "leak-check-unknown", api_key}) {
    for (const auto& [what, text] : {std::pair{"logs", logs}, std::pair{"metrics", metrics},
                                     std::pair{"status", status}, std::pair{"answers", answers}}) {
      EXPECT_EQ(text.find(s), std::string::npos) << s << " in " << what;
    }
  }
}

}  // namespace
}  // namespace nines::test
