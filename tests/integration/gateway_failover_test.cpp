// Failover before the first byte, and the explicit end of a stream that broke after it.

#include <boost/json.hpp>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

TEST(gateway_failover, refused_upstream_is_skipped) {
  auto refusing = start_mock({"--refuse"});
  auto healthy = start_mock();
  auto gw = start_gateway(upstreams_toml({refusing.url(), healthy.url()}) +
                          "\n[retry]\nbackoff_base_ms = 1\n");
  for (int i = 0; i < 20; ++i) {
    const auto body = chat_body("step " + std::to_string(i), true);
    auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200U);
    ASSERT_EQ(stream_text(sse_events(r.body)), expected_answer(body, true));
  }
  EXPECT_EQ(mock_stat(healthy.port, "completed"), 20U);
}

TEST(gateway_failover, bursts_of_503_are_retried_elsewhere) {
  auto overloaded = start_mock({"--faults", "error_rate=1"});
  auto healthy = start_mock();
  auto gw = start_gateway(upstreams_toml({overloaded.url(), healthy.url()}) +
                          "\n[retry]\nbackoff_base_ms = 1\n");
  for (int i = 0; i < 20; ++i) {
    const auto body = chat_body("burst " + std::to_string(i), false);
    auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200U) << r.body;
    ASSERT_EQ(answer_text(r.body), expected_answer(body, true));
  }
  EXPECT_GT(mock_stat(overloaded.port, "errors_503"), 0U);  // it was tried, and failed over
  EXPECT_EQ(mock_stat(healthy.port, "completed"), 20U);
}

TEST(gateway_failover, only_upstream_503_gives_the_last_upstream_answer_after_max_attempts) {
  auto overloaded = start_mock({"--faults", "error_rate=1"});
  auto gw = start_gateway(upstreams_toml({overloaded.url()}) +
                          "\n[retry]\nbackoff_base_ms = 1\nmax_attempts = 3\n");
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", true));
  EXPECT_EQ(r.status, 503U);
  EXPECT_NE(r.body.find("injected 503"), std::string::npos);
  EXPECT_EQ(mock_stat(overloaded.port, "errors_503"), 3U);
}

TEST(gateway_failover, retry_after_is_honoured_when_it_fits_and_passed_on_when_not) {
  auto limited = start_mock({"--faults", "rate_limit_rate=1,retry_after=1"});
  auto gw = start_gateway(upstreams_toml({limited.url()}) +
                          "\n[retry]\nbackoff_base_ms = 1\nmax_attempts = 2\ndeadline_ms = 5000\n");
  // One second fits the 5 s deadline: the gateway waits and tries the same upstream again.
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", false));
  EXPECT_EQ(r.status, 429U);
  EXPECT_EQ(mock_stat(limited.port, "errors_429"), 2U);

  auto slow = start_mock({"--faults", "rate_limit_rate=1,retry_after=100"});
  auto gw2 = start_gateway(upstreams_toml({slow.url()}) +
                           "\n[retry]\nbackoff_base_ms = 1\nmax_attempts = 3\ndeadline_ms = 5000\n");
  // 100 s does not fit: no second attempt; the client gets the 429 and its Retry-After.
  auto r2 = http_call(gw2.port, "POST", "/v1/chat/completions", chat_body("x", false));
  EXPECT_EQ(r2.status, 429U);
  EXPECT_EQ(r2.headers["retry-after"], "100");
  EXPECT_EQ(mock_stat(slow.port, "errors_429"), 1U);
}

TEST(gateway_failover, rate_limited_upstream_fails_over_to_another) {
  auto limited = start_mock({"--faults", "rate_limit_rate=1,retry_after=30"});
  auto healthy = start_mock();
  auto gw = start_gateway(upstreams_toml({limited.url(), healthy.url()}) +
                          "\n[retry]\nbackoff_base_ms = 1\n");
  for (int i = 0; i < 10; ++i) {
    auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("y" + std::to_string(i), true));
    ASSERT_EQ(r.status, 200U);
  }
  // After its first 429, the limited upstream is avoided for its Retry-After.
  EXPECT_EQ(mock_stat(limited.port, "errors_429"), 1U);
}

// Two upstreams in priority order: `first` is always tried first.
std::string first_then_second(const std::string& first_name, const server& first,
                              const server& second) {
  return "[[upstreams]]\nname = \"" + first_name + "\"\nurl = \"" + first.url() +
         "\"\npriority = 0\n[[upstreams]]\nname = \"ok\"\nurl = \"" + second.url() +
         "\"\npriority = 1\n";
}

TEST(gateway_failover, slow_first_byte_times_out_and_fails_over) {
  auto slow = start_mock({"--faults", "ttft_ms=5000"});
  auto healthy = start_mock();
  auto gw = start_gateway("[timeouts]\nfirst_byte_ms = 300\n" +
                          first_then_second("slow", slow, healthy));
  const auto body = chat_body("z", true);
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(stream_text(sse_events(r.body)), expected_answer(body, true));
  EXPECT_TRUE(gw.proc->wait_for_output(R"("upstreams":["slow","ok"])"));
}

TEST(gateway_failover, whole_answer_broken_midway_is_retried_never_a_partial_200) {
  auto breaking = start_mock({"--faults", "die_after=1"});
  auto healthy = start_mock();
  auto gw = start_gateway("[retry]\nbackoff_base_ms = 1\n" +
                          first_then_second("breaks", breaking, healthy));
  const auto body = chat_body("w", false);
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
  EXPECT_EQ(mock_stat(breaking.port, "broken"), 1U);
}

// For each way a stream can break after the client got bytes, when it cannot be continued
// (resumes off here), the client gets an explicit error event and no [DONE]: never a silent
// truncation.
TEST(gateway_failover, stream_broken_after_first_byte_ends_with_an_error_event) {
  for (const std::string fault : {"die_after=3", "malformed_after=3", "stall_after=3", "cut_after=3"}) {
    auto breaking = start_mock({"--faults", fault});
    auto gw = start_gateway(upstreams_toml({breaking.url()}) +
                            "\n[timeouts]\nstream_idle_ms = 300\n[retry]\nmax_resumes = 0\n");
    const auto body = chat_body("v", true);
    auto r = http_call(gw.port, "POST", "/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200U) << fault;
    EXPECT_TRUE(r.complete) << fault << ": the chunked body must end properly";
    auto events = sse_events(r.body);
    ASSERT_GE(events.size(), 2U) << fault;
    for (const auto& e : events) {
      EXPECT_NE(e.data, "[DONE]") << fault;
    }
    auto last = json::parse(events.back().data).as_object();
    ASSERT_TRUE(last.contains("error")) << fault << ": " << events.back().data;
    EXPECT_EQ(last["error"].as_object()["type"].as_string(), "stream_incomplete") << fault;
    EXPECT_EQ(last["error"].as_object()["code"].as_string(), "upstream_stream_broken") << fault;
    // What came before the error is an exact prefix of the answer: three tokens.
    std::vector<core::sse_event> content(events.begin(), events.end() - 1);
    const auto expected = expected_answer(body, true);
    EXPECT_TRUE(expected.starts_with(stream_text(content))) << fault;
    EXPECT_FALSE(stream_text(content).empty()) << fault;
    EXPECT_TRUE(gw.proc->wait_for_output(R"("outcome":"stream_incomplete")")) << fault;
  }
}

TEST(gateway_failover, all_upstreams_down_is_a_502_json_error_and_not_ready) {
  auto a = start_mock({"--refuse"});
  auto b = start_mock({"--refuse"});
  auto gw = start_gateway(upstreams_toml({a.url(), b.url()}) + "\n[retry]\nbackoff_base_ms = 1\n");
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", true));
  EXPECT_EQ(r.status, 502U);
  EXPECT_NE(r.body.find("upstream_unavailable"), std::string::npos);
  EXPECT_NE(r.body.find("connect_refused"), std::string::npos);
  EXPECT_EQ(http_call(gw.port, "GET", "/readyz").status, 503U);
}

TEST(gateway_failover, upstream_down_at_startup_is_not_fatal_and_is_used_once_up) {
  // Take a port, free it, start the gateway pointing at it, then start the upstream there.
  unsigned short port = 0;
  {
    auto placeholder = start_mock({"--refuse"});
    port = placeholder.port;
  }
  const std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto gw = start_gateway(upstreams_toml({url}) + "\n[retry]\nbackoff_base_ms = 1\n");
  EXPECT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", false)).status, 502U);
  auto late = start_mock({"--listen", "127.0.0.1:" + std::to_string(port)});
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", false));
  EXPECT_EQ(r.status, 200U) << r.body;
}

TEST(gateway_failover, bad_config_exits_2_listing_every_problem) {
  const std::string path = "/tmp/nines-bad-config-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path) << "[gateway]\nlisten = \"nowhere\"\n[[upstreams]]\nurl = \"ftp://x\"\n"
                         "weight = 0\n";
  process p({NINES_BINARY, "gateway", "--config", path});
  EXPECT_EQ(p.wait_exit(), 2);
  const auto out = p.output();
  EXPECT_NE(out.find(path + ":2:10: gateway.listen"), std::string::npos) << out;
  EXPECT_NE(out.find(path + ":4:7: upstreams[0].url"), std::string::npos) << out;
  EXPECT_NE(out.find(path + ":5:10: upstreams[0].weight"), std::string::npos) << out;
  EXPECT_NE(out.find("3 problems"), std::string::npos) << out;
}

TEST(gateway_failover, a_port_another_process_listens_on_is_refused_not_shared) {
  // Workers share their port with SO_REUSEPORT; a second gateway must not join the first's.
  auto mock = start_mock();
  auto first = start_gateway(upstreams_toml({mock.url()}));
  const std::string path = "/tmp/nines-port-taken-" + std::to_string(::getpid()) + ".toml";
  std::ofstream(path) << "[gateway]\nlisten = \"127.0.0.1:" << first.port << "\"\n"
                      << upstreams_toml({mock.url()});
  process second({NINES_BINARY, "gateway", "--config", path});
  EXPECT_EQ(second.wait_exit(), 1);
  EXPECT_NE(second.output().find("cannot listen on 127.0.0.1:" + std::to_string(first.port) +
                                 ": Address already in use (another process listens there)"),
            std::string::npos)
      << second.output();
  EXPECT_EQ(http_call(first.port, "GET", "/healthz").status, 200U);
}

TEST(gateway_failover, sigterm_drains_in_flight_streams_then_exits) {
  auto slow = start_mock({"--faults", "tpot_ms=40"});
  auto gw = start_gateway(upstreams_toml({slow.url()}));
  const auto body = chat_body("drain me", true);
  response r;
  std::thread client([&] { r = http_call(gw.port, "POST", "/v1/chat/completions", body); });
  // The stream has started once the mock counts it; then ask the gateway to stop.
  for (int i = 0; i < 2000 && mock_stat(slow.port, "streams") == 0; ++i) {
    std::this_thread::yield();
  }
  gw.proc->signal(SIGTERM);
  client.join();
  EXPECT_EQ(r.status, 200U);
  auto events = sse_events(r.body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().data, "[DONE]");
  EXPECT_EQ(stream_text(events), expected_answer(body, true));
  EXPECT_EQ(gw.proc->wait_exit(), 0);
}

}  // namespace
}  // namespace nines::test
