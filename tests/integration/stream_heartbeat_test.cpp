// Heartbeats on a stream's silences (x-nines-heartbeat-ms): the gateway writes an SSE comment
// whenever it sent nothing for that long, and the edge, whose uplinks beat, takes silence longer
// than three beats for a cut and resumes the stream on the next uplink.

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

// SSE comment lines in a body: a line that is exactly ":" (what the gateway beats with).
std::size_t beats_in(const std::string& body) {
  std::size_t n = 0;
  for (std::size_t at = 0; (at = body.find(":\n\n", at)) != std::string::npos; at += 3) {
    if (at == 0 || body[at - 1] == '\n') {
      ++n;
    }
  }
  return n;
}

TEST(stream_heartbeat, a_slow_stream_carries_beats_between_its_events_when_asked) {
  auto slow = start_mock({"--tokens", "3", "--faults", "tpot_ms=400"});
  auto gw = start_gateway(upstreams_toml({slow.url()}));
  const auto body = chat_body("wait for it", true);
  auto asked = http_call(gw.port, "POST", "/v1/chat/completions", body,
                         {{"x-nines-heartbeat-ms", "100"}});
  ASSERT_EQ(asked.status, 200U) << asked.body;
  EXPECT_EQ(asked.headers["x-nines-heartbeat-ms"], "100");
  EXPECT_EQ(stream_text(sse_events(asked.body)), expected_answer(body, true, 3));
  EXPECT_GE(beats_in(asked.body), 3U);  // 1.2 s of tokens 400 ms apart, beats every 100 ms
  // Not asked: not a byte more.
  auto plain = http_call(gw.port, "POST", "/v1/chat/completions", body);
  ASSERT_EQ(plain.status, 200U);
  EXPECT_EQ(beats_in(plain.body), 0U);
  EXPECT_EQ(plain.headers.count("x-nines-heartbeat-ms"), 0U);
}

// A journaled stream's reader beats for its own client (the generation runs apart from it).
TEST(stream_heartbeat, a_journaled_stream_beats_for_the_client_that_asked) {
  auto slow = start_mock({"--tokens", "3", "--faults", "tpot_ms=400"});
  auto gw = start_gateway(upstreams_toml({slow.url()}) + "\n[journal]\nmode = \"all\"\n");
  const auto body = chat_body("journaled", true);
  auto asked = http_call(gw.port, "POST", "/v1/chat/completions", body,
                         {{"x-nines-heartbeat-ms", "100"}});
  ASSERT_EQ(asked.status, 200U) << asked.body;
  EXPECT_EQ(asked.headers["x-nines-heartbeat-ms"], "100");
  EXPECT_EQ(stream_text(sse_events(asked.body)), expected_answer(body, true, 3));
  EXPECT_GE(beats_in(asked.body), 3U);
  auto plain = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("other", true));
  ASSERT_EQ(plain.status, 200U);
  EXPECT_EQ(beats_in(plain.body), 0U);
  EXPECT_EQ(plain.headers.count("x-nines-heartbeat-ms"), 0U);
}

TEST(stream_heartbeat, a_whole_answer_is_unchanged_by_the_field) {
  auto model = start_mock();
  auto gw = start_gateway(upstreams_toml({model.url()}));
  const auto body = chat_body("x", false);
  auto r = http_call(gw.port, "POST", "/v1/chat/completions", body,
                     {{"x-nines-heartbeat-ms", "100"}});
  ASSERT_EQ(r.status, 200U);
  EXPECT_EQ(answer_text(r.body), expected_answer(body, true));
}

TEST(stream_heartbeat, a_value_nines_would_have_to_guess_at_is_refused) {
  auto model = start_mock();
  auto gw = start_gateway(upstreams_toml({model.url()}));
  for (const char* bad : {"0", "99", "60001", "abc", "100ms", "-100", " ", "1e3"}) {
    auto r = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", true),
                       {{"x-nines-heartbeat-ms", bad}});
    EXPECT_EQ(r.status, 400U) << bad;
    EXPECT_NE(r.body.find("\"code\":\"invalid_heartbeat\""), std::string::npos) << r.body;
  }
  // Given twice, even alike: refused.
  const std::string twice =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "x-nines-heartbeat-ms: 100\r\nx-nines-heartbeat-ms: 100\r\nConnection: close\r\n"
      "Content-Length: " +
      std::to_string(chat_body("x", true).size()) + "\r\n\r\n" + chat_body("x", true);
  const auto answer = raw_exchange(gw.port, twice);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0U) << answer;
  EXPECT_NE(answer.find("invalid_heartbeat"), std::string::npos);
  EXPECT_EQ(mock_stat(model.port, "completed"), 0U);
}

// The edge in front of two gateways; the one on "wifi" is reached through a chaos proxy whose
// link goes silent mid-stream (a blackhole: nothing passes, nothing closes). Its gateway's beats
// stop with everything else, and the edge resumes the stream on "cellular" after three missed
// beats, exactly. With the beats off, the same cut waits for stream_idle_ms.
struct silent_cut_run {
  std::string text;
  std::string why;  // the access log's reason for the resume
  std::uint64_t stall_resumes = 0;
};

silent_cut_run cut_a_stream_silently(const std::string& wifi_extra, const std::string& edge_extra) {
  auto model_a = start_mock({"--tokens", "30", "--faults", "tpot_ms=60"});
  auto model_b = start_mock({"--tokens", "30"});
  auto gw_a = start_gateway(upstreams_toml({model_a.url()}));
  auto gw_b = start_gateway(upstreams_toml({model_b.url()}));
  auto chaos = start_chaos();
  const auto hole = add_chaos_proxy(chaos, "wifi", gw_a.port);
  const auto uplinks =
      "[[uplinks]]\nname = \"wifi\"\nurl = \"http://127.0.0.1:" + std::to_string(hole) +
      "/v1\"\n" + wifi_extra + "[[uplinks]]\nname = \"cellular\"\nurl = \"" + gw_b.url() +
      "/v1\"\npriority = 1\n";
  auto edge = start_edge(uplinks + edge_extra, {"--access-log", "stdout"});
  const auto body = chat_body("read the screen", true);
  stream_reader reader(edge.port, "/v1/chat/completions", body);
  EXPECT_TRUE(reader.read_events(4));
  const auto r = http_call(chaos.port, "POST", "/proxies/wifi/toxics",
                           R"({"type":"timeout","name":"hole","stream":"downstream",)"
                           R"("attributes":{"timeout":0}})");
  EXPECT_EQ(r.status, 200U) << r.body;
  EXPECT_TRUE(reader.read_events(64) || reader.ended());
  silent_cut_run out;
  out.text = stream_text(reader.events());
  EXPECT_EQ(reader.events().back().data, "[DONE]");
  EXPECT_EQ(out.text, expected_answer(body, true, 30));
  auto line = edge.proc->wait_for_output("\"resume_log\":");
  if (line) {
    const auto at = line->find("\"cause\":\"");
    out.why = at == std::string::npos ? "" : line->substr(at + 9, line->find('"', at + 9) - at - 9);
  }
  out.stall_resumes = metric_value(
      edge.admin_port, R"(nines_stream_resumes_total{cause="stall",from="wifi",to="cellular"})");
  return out;
}

TEST(stream_heartbeat, the_edge_resumes_a_silently_cut_stream_after_three_missed_beats) {
  const auto run = cut_a_stream_silently("", "");  // the edge's default: beats every 250 ms
  EXPECT_EQ(run.stall_resumes, 1U);
  EXPECT_NE(run.why.find("stalled: no data for 750 ms"), std::string::npos) << run.why;
}

TEST(stream_heartbeat, without_beats_the_same_cut_waits_for_stream_idle) {
  const auto run = cut_a_stream_silently("heartbeat_ms = 0\n", "[timeouts]\nstream_idle_ms = 2000\n");
  EXPECT_EQ(run.stall_resumes, 1U);
  EXPECT_NE(run.why.find("stalled: no data for 2000 ms"), std::string::npos) << run.why;
}

}  // namespace
}  // namespace nines::test
