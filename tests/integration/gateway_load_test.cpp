// The gateway under load from `nines bench`, which checks every answer byte for byte.

#include <boost/json.hpp>
#include <csignal>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

json::object run_bench(const server& gw, std::vector<std::string> args) {
  const std::string report = "/tmp/nines-bench-" + std::to_string(::getpid()) + "-" +
                             std::to_string(gw.port) + ".json";
  std::vector<std::string> argv{NINES_BINARY, "bench", "--url", gw.url(), "--json", report};
  argv.insert(argv.end(), args.begin(), args.end());
  process bench(argv);
  const auto code = bench.wait_exit(std::chrono::milliseconds(120000));
  EXPECT_TRUE(code.has_value());
  std::ifstream in(report);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) {
    ADD_FAILURE() << "no bench report: " << bench.output();
    return {};
  }
  return json::parse(text).as_object();
}

std::uint64_t count(const json::object& report, const char* key) {
  return report.at(key).to_number<std::uint64_t>();
}

// Runs `nines bench` through a gateway in front of `victim` and `survivor`, and kills the victim
// with SIGKILL once it has completed `kill_after` answers.
json::object bench_through_a_kill(server& victim, server& survivor, std::uint64_t kill_after,
                                  std::vector<std::string> bench_args) {
  auto gw = start_gateway(upstreams_toml({victim.url(), survivor.url()}) +
                              "\n[retry]\nbackoff_base_ms = 2\n",
                          {"--access-log", "off"});
  json::object report;
  std::thread load([&] { report = run_bench(gw, bench_args); });
  // Synchronise on the victim's own counter, not on time.
  for (int i = 0; i < 100000 && mock_stat(victim.port, "completed") < kill_after; ++i) {
    std::this_thread::yield();
  }
  victim.proc->signal(SIGKILL);
  load.join();
  return report;
}

// The acceptance scenario at a test-sized count (the full 10,000 run is in make bench).
TEST(gateway_load, streams_over_refused_503_and_healthy_upstreams_all_complete_exactly) {
  auto refusing = start_mock({"--refuse"});
  auto overloaded = start_mock({"--faults", "error_rate=0.5"});
  auto healthy = start_mock();
  auto gw = start_gateway(upstreams_toml({refusing.url(), overloaded.url(), healthy.url()}) +
                          "", {"--access-log", "off"});
  auto report = run_bench(gw, {"--requests", "1500", "--concurrency", "24", "--stream", "true"});
  EXPECT_EQ(count(report, "requests"), 1500U);
  EXPECT_EQ(count(report, "succeeded"), 1500U) << json::serialize(report);
  const auto injected = mock_stat(overloaded.port, "errors_503");
  std::printf("503s injected and absorbed: %llu\n", static_cast<unsigned long long>(injected));
  EXPECT_GT(injected, 20U);  // the faults really happened (how many depends on when ejection starts)
}

TEST(gateway_load, upstream_killed_under_load_loses_no_whole_answer) {
  // Every answer takes 5 ms to start, so that the kill catches requests in flight.
  auto victim = start_mock({"--faults", "ttft_ms=5"});
  auto survivor = start_mock({"--faults", "ttft_ms=5"});
  const auto report = bench_through_a_kill(victim, survivor, 300,
                                           {"--requests", "3000", "--concurrency", "32",
                                            "--stream", "false"});
  EXPECT_EQ(count(report, "succeeded"), 3000U) << json::serialize(report);
  EXPECT_GT(mock_stat(survivor.port, "completed"), 1000U);
}

// Streams in flight on the killed upstream broke after their first byte: each is continued on
// the survivor, and every client still gets the exact answer.
TEST(gateway_load, streams_cut_by_a_kill_are_continued_on_the_survivor) {
  auto victim = start_mock({"--faults", "tpot_ms=2"});
  auto survivor = start_mock({"--faults", "tpot_ms=2"});
  const auto report = bench_through_a_kill(victim, survivor, 200,
                                           {"--requests", "1500", "--concurrency", "32",
                                            "--stream", "true"});
  ASSERT_FALSE(report.empty());
  EXPECT_EQ(count(report, "succeeded"), 1500U) << json::serialize(report);
  EXPECT_GT(mock_stat(survivor.port, "continuations"), 0U);  // the kill did cut streams
}

// A client that stops reading: the gateway relays with backpressure, so it does not read the
// upstream's 30 MB answer into memory meanwhile; the upstream is held back instead.
TEST(gateway_load, slow_client_holds_the_upstream_back_instead_of_filling_gateway_memory) {
  auto big = start_mock({"--tokens", "200000"});
  auto gw = start_gateway(upstreams_toml({big.url()}), {"--access-log", "off"});
  auto rss_kib = [&](const std::string& field) {
    std::ifstream status("/proc/" + std::to_string(gw.proc->pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.starts_with(field)) {
        return std::stoul(line.substr(field.size()));
      }
    }
    return 0UL;
  };
  stream_reader reader(gw.port, "/v1/chat/completions", chat_body("long answer", true), false);
  ASSERT_TRUE(reader.read_events(2));
  // The client is slow: it reads nothing for a second (this pause is the behaviour under test,
  // not a synchronisation). Without backpressure the mock would finish writing meanwhile.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(mock_stat(big.port, "completed"), 0U);
  if (!sanitized) {  // ASan's shadow memory and quarantine make resident size meaningless
    EXPECT_LT(rss_kib("VmRSS:"), 48UL * 1024);
  }
  ASSERT_TRUE(reader.read_events(200000 + 3));  // role chunk, tokens, finish chunk
  while (!reader.ended() && reader.read_events(reader.count() + 1)) {
  }
  EXPECT_EQ(reader.last().data, "[DONE]");
  EXPECT_EQ(mock_stat(big.port, "completed"), 1U);
  if (!sanitized) {
    EXPECT_LT(rss_kib("VmHWM:"), 48UL * 1024) << "peak resident memory";
  }
}

}  // namespace
}  // namespace nines::test
