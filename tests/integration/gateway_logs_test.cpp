// Logs: the access log's JSON lines (level, trace context), W3C traceparent propagation, reopening
// on SIGUSR1 for logrotate, the JSON operational log, and no secret in any of them.

#include <boost/json.hpp>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

std::vector<json::object> json_lines(const std::string& text) {
  std::vector<json::object> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '{') {
      out.push_back(json::parse(line).as_object());
    }
  }
  return out;
}

json::object last_headers(const server& mock) {
  return json::parse(http_call(mock.port, "GET", "/mock/last-headers").body).as_object();
}

TEST(gateway_logs, traceparent_is_continued_upstream_and_logged) {
  auto mock = start_mock();
  auto gw = start_gateway(upstreams_toml({mock.url()}));
  const std::string client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string client_span = "00f067aa0ba902b7";
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("t", false),
                     {{"traceparent", "00-" + client_trace + "-" + client_span + "-01"},
                      {"x-nines-hedge", "off"}});
  ASSERT_EQ(r.status, 200U);
  const auto sent = std::string(last_headers(mock).at("traceparent").as_string());
  // Same trace, the gateway's own span as the upstream's parent, sampled.
  EXPECT_EQ(sent.substr(0, 36), "00-" + client_trace + "-");
  const auto gateway_span = sent.substr(36, 16);
  EXPECT_NE(gateway_span, client_span);
  EXPECT_EQ(sent.substr(52), "-01");
  EXPECT_FALSE(last_headers(mock).contains("x-nines-hedge"));  // the gateway's own header stays here
  auto line = gw.proc->wait_for_output(R"("trace_id":")" + client_trace);
  ASSERT_TRUE(line);
  const auto entry = json::parse(*line).as_object();
  EXPECT_EQ(entry.at("span_id").as_string(), gateway_span);
  EXPECT_EQ(entry.at("parent_id").as_string(), client_span);
  EXPECT_EQ(entry.at("level").as_string(), "info");
  EXPECT_EQ(std::string(entry.at("time").as_string()).size(), 24U);  // 2026-11-26T05:41:00.123Z
  // Without one, a trace starts here.
  ASSERT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("u", false)).status, 200U);
  const auto started = std::string(last_headers(mock).at("traceparent").as_string());
  EXPECT_EQ(started.size(), 55U);
  EXPECT_NE(started.substr(3, 32), client_trace);
}

TEST(gateway_logs, failures_are_logged_as_errors_and_bad_input_as_warnings) {
  auto down = start_mock({"--refuse"});
  auto gw = start_gateway(upstreams_toml({down.url()}) + "\n[retry]\nbackoff_base_ms = 1\n");
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", false)).status, 502U);
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", "{nope").status, 400U);
  auto failed = gw.proc->wait_for_output(R"("outcome":"failed")");
  auto rejected = gw.proc->wait_for_output(R"("outcome":"rejected")");
  ASSERT_TRUE(failed && rejected);
  EXPECT_EQ(json::parse(*failed).at("level").as_string(), "error");
  EXPECT_EQ(json::parse(*rejected).at("level").as_string(), "warning");
}

TEST(gateway_logs, sigusr1_reopens_the_access_log_for_logrotate) {
  auto mock = start_mock();
  const std::string path = "/tmp/nines-access-" + std::to_string(::getpid()) + ".log";
  std::remove(path.c_str());
  std::remove((path + ".1").c_str());
  auto gw = start_gateway(upstreams_toml({mock.url()}) + "\n", {"--access-log", path});
  ASSERT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("before", false),
                      {{"x-request-id", "before-rotate"}})
                .status,
            200U);
  // What logrotate does: move the file, then signal.
  // (the worker's buffer is flushed every 100 ms)
  ASSERT_TRUE(eventually([&] { return read_file(path).find("before-rotate") != std::string::npos; }));
  ASSERT_EQ(std::rename(path.c_str(), (path + ".1").c_str()), 0);
  gw.proc->signal(SIGUSR1);
  ASSERT_TRUE(gw.proc->wait_for_output("access log reopened"));
  ASSERT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("after", false),
                      {{"x-request-id", "after-rotate"}})
                .status,
            200U);
  EXPECT_TRUE(eventually([&] { return read_file(path).find("after-rotate") != std::string::npos; }));
  EXPECT_EQ(read_file(path).find("before-rotate"), std::string::npos);
  EXPECT_NE(read_file(path + ".1").find("before-rotate"), std::string::npos);
  for (const auto& l : json_lines(read_file(path))) {
    EXPECT_TRUE(l.contains("level"));
  }
}

TEST(gateway_logs, secrets_never_reach_a_log) {
  auto mock = start_mock({"--faults", "die_after=3"});
  auto healthy = start_mock();
  const std::string path = "/tmp/nines-secrets-" + std::to_string(::getpid()) + ".log";
  std::remove(path.c_str());
  auto gw = start_gateway("\n[[upstreams]]\nname = \"a\"\nurl = \"" +
                              mock.url() + "/v1\"\napi_key = \"sk-upstream-SECRET-1\"\npriority = 0\n"
                              "[[upstreams]]\nname = \"b\"\nurl = \"" + healthy.url() +
                              "/v1\"\napi_key = \"sk-upstream-SECRET-2\"\npriority = 1\n",
                          {"--access-log", path});
  // Requests that succeed, resume and fail, all with the client's own credentials.
  const std::map<std::string, std::string> creds{{"authorization", "Bearer sk-client-SECRET-3"},
                                                 {"x-request-id", "secret-test"}};
  http_call(gw.port, "POST", "/v1/chat/completions", chat_body("s", true), creds);
  http_call(gw.port, "POST", "/v1/chat/completions", "{bad", creds);
  http_call(gw.port, "GET", "/v1/models", "", creds);
  // The upstream got its own key, not the client's.
  EXPECT_EQ(last_headers(healthy).at("authorization").as_string(), "Bearer sk-upstream-SECRET-2");
  EXPECT_TRUE(eventually([&] { return read_file(path).find("secret-test") != std::string::npos; }));
  gw.proc->signal(SIGTERM);
  gw.proc->wait_exit();
  const auto everything = read_file(path) + gw.proc->output();
  EXPECT_NE(everything.find("secret-test"), std::string::npos);
  EXPECT_EQ(everything.find("SECRET"), std::string::npos) << everything;
}

TEST(gateway_logs, the_operational_log_can_be_json) {
  auto mock = start_mock();
  auto json_gw = start_gateway(upstreams_toml({mock.url()}) + "\n", {"--access-log", "off",
                                                                      "--log-format", "json"});
  auto line = json_gw.proc->wait_for_output("nines gateway listening on");
  ASSERT_TRUE(line);
  const auto entry = json::parse(*line).as_object();
  EXPECT_EQ(entry.at("level").as_string(), "info");
  EXPECT_EQ(entry.at("logger").as_string(), "nines");
  EXPECT_NE(std::string(entry.at("message").as_string()).find("listening on"), std::string::npos);
}

}  // namespace
}  // namespace nines::test
