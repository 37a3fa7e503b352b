// Health and adaptive routing through the real binary: active probes, outlier ejection and the
// half-open way back, tier hysteresis, the retry budget, hedging, concurrency limits, /status and
// `nines status`, `nines probe`, and reloads under load.

#include <boost/json.hpp>
#include <csignal>
#include <fcntl.h>
#include <sys/stat.h>
#include <fstream>
#include <gtest/gtest.h>
#include <thread>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

json::object status_of(const server& gw) {
  return json::parse(http_call(gw.admin_port, "GET", "/status").body).as_object();
}

std::string state_of(const server& gw, const std::string& upstream) {
  return std::string(status_of(gw).at("upstreams").at(upstream).at("state").as_string());
}

// Waits (bounded) until `done()` holds, sending a request through the gateway between looks so
// that passive health has traffic to judge. Synchronises on what /status says, not on time.
template <class Done>
bool drive_until(const server& gw, Done done, int limit = 3000) {
  for (int i = 0; i < limit; ++i) {
    if (done()) {
      return true;
    }
    http_call(gw.port, "POST", "/v1/chat/completions", chat_body("drive " + std::to_string(i), false));
  }
  return done();
}

json::object run_bench(const server& gw, std::vector<std::string> args) {
  const std::string report = "/tmp/nines-health-bench-" + std::to_string(::getpid()) + "-" +
                             std::to_string(gw.port) + ".json";
  std::vector<std::string> argv{NINES_BINARY, "bench", "--url", gw.url(), "--json", report};
  argv.insert(argv.end(), args.begin(), args.end());
  process bench(argv);
  EXPECT_TRUE(bench.wait_exit(std::chrono::milliseconds(120000)).has_value());
  std::ifstream in(report);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text.empty() ? json::object{} : json::parse(text).as_object();
}

std::string named(const std::string& name, const server& s, int priority = 0) {
  return "\n[[upstreams]]\nname = \"" + name + "\"\nurl = \"" + s.url() + "/v1\"\npriority = " +
         std::to_string(priority) + "\n";
}

TEST(gateway_health, active_probes_find_a_silent_upstream_and_status_shows_it) {
  auto quiet = start_mock();
  auto fine = start_mock();
  auto chaos = start_chaos();
  const auto link = add_chaos_proxy(chaos, "quiet", quiet.port);
  auto gw = start_gateway("[health]\ninterval_ms = 50\njitter_ms = 10\ntimeout_ms = 100\n"
                          "unhealthy_threshold = 2\nhealthy_threshold = 2\n"
                          "\n[[upstreams]]\nname = \"quiet\"\nurl = \"http://127.0.0.1:" +
                          std::to_string(link) + "/v1\"\n" + named("fine", fine));
  EXPECT_TRUE(drive_until(gw, [&] { return state_of(gw, "quiet") == "healthy"; }, 100));
  // The link starts dropping everything: probes time out, the upstream turns unhealthy.
  ASSERT_EQ(http_call(chaos.port, "POST", "/proxies/quiet/toxics",
                      R"({"type":"timeout","name":"hole","attributes":{"timeout":0}})")
                .status,
            200U);
  bool unhealthy = false;
  for (int i = 0; i < 100000 && !unhealthy; ++i) {
    unhealthy = state_of(gw, "quiet") == "unhealthy";
  }
  ASSERT_TRUE(unhealthy);
  const auto s = status_of(gw);
  const auto& q = s.at("upstreams").at("quiet").as_object();
  EXPECT_GT(q.at("probe").at("loss").to_number<double>(), 0.0);
  EXPECT_NE(std::string(q.at("probe").at("last_error").as_string()), "");
  EXPECT_FALSE(q.at("healthy").as_bool());
  EXPECT_EQ(std::string(s.at("upstreams").at("fine").at("state").as_string()), "healthy");
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_upstream_up{upstream="quiet"})"), 0U);
  // Requests go to the healthy one only.
  const auto before = mock_stat(quiet.port, "requests");
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(http_call(gw.port, "POST", "/v1/chat/completions", chat_body("x", false)).status, 200U);
  }
  EXPECT_EQ(mock_stat(quiet.port, "requests"), before + 1);  // + this stats call
  // `nines status` prints the same.
  process cli({NINES_BINARY, "status", gw.admin_url()});
  EXPECT_EQ(cli.wait_exit(), 0);
  EXPECT_NE(cli.output().find("quiet"), std::string::npos);
  EXPECT_NE(cli.output().find("unhealthy"), std::string::npos);
  // The hole closes: healthy again after two good probes.
  ASSERT_EQ(http_call(chaos.port, "DELETE", "/proxies/quiet/toxics/hole").status, 204U);
  bool back = false;
  for (int i = 0; i < 100000 && !back; ++i) {
    back = state_of(gw, "quiet") == "healthy";
  }
  EXPECT_TRUE(back);
}

TEST(gateway_health, an_ejected_upstream_comes_back_through_half_open_after_it_recovers) {
  auto sick = start_mock({"--faults", "error_rate=1"});
  auto fine = start_mock({"--faults", "ttft_ms=20"});
  // No active probes: the way back is through real requests let through while half-open.
  auto gw = start_gateway("[health]\nenabled = false\n"
                          "[outlier]\nbase_ejection_ms = 300\nhalf_open_trials = 2\n"
                          "[retry]\nbackoff_base_ms = 1\n" +
                              named("sick", sick) + named("fine", fine),
                          {"--access-log", "off"});
  // Concurrent traffic finds it failing: ejected (every client still gets its answer).
  const auto report = run_bench(gw, {"--requests", "300", "--connections", "8", "--stream", "false"});
  EXPECT_EQ(report.at("succeeded").to_number<std::uint64_t>(), 300U) << json::serialize(report);
  ASSERT_GE(metric_value(gw.admin_port, R"(nines_upstream_ejections_total{upstream="sick"})"), 1U);
  EXPECT_NE(std::string(status_of(gw).at("upstreams").at("sick").at("last_ejection_reason").as_string()),
            "");
  // It recovers. After its ejection time it is half-open; two trials succeed; it is closed again.
  ASSERT_EQ(http_call(sick.port, "POST", "/mock/faults", "{}").status, 200U);
  const auto served_before = mock_stat(sick.port, "completed");
  ASSERT_TRUE(drive_until(gw, [&] {
    const auto s = status_of(gw);
    return s.at("upstreams").at("sick").at("breaker").as_string() == "closed" &&
           mock_stat(sick.port, "completed") >= served_before + 2;
  }));
  EXPECT_EQ(state_of(gw, "sick"), "healthy");
}

TEST(gateway_health, a_dead_upstream_receives_a_bounded_number_of_requests) {
  auto dead = start_mock({"--faults", "error_rate=1"});  // accepts, then always 503
  auto b = start_mock();
  auto c = start_mock();
  auto gw = start_gateway(named("dead", dead) + named("b", b) + named("c", c) +
                              "\n[retry]\nbackoff_base_ms = 1\n",
                          {"--access-log", "off"});
  const auto report = run_bench(gw, {"--requests", "600", "--connections", "8", "--stream", "true"});
  EXPECT_EQ(report.at("succeeded").to_number<std::uint64_t>(), 600U) << json::serialize(report);
  // Without outlier detection it would take a third of 600 first attempts and retries besides;
  // ejected after 5 failures in a row (from any worker), it sees a handful.
  EXPECT_LE(mock_stat(dead.port, "requests"), 20U);
  EXPECT_GE(mock_stat(dead.port, "requests"), 1U);
}

TEST(gateway_health, the_retry_budget_fails_fast_when_retries_would_pile_up) {
  // Every upstream times out (first byte after 2 s, the gateway waits 200 ms): each retry would
  // be another 200 ms of a server's time. With a budget of 10% and a floor of 1, most requests
  // fail fast instead of retrying.
  auto a = start_mock({"--faults", "ttft_ms=2000"});
  auto b = start_mock({"--faults", "ttft_ms=2000"});
  auto gw = start_gateway(named("a", a) + named("b", b) +
                              "\n[timeouts]\nfirst_byte_ms = 200\n"
                              "[retry]\nbackoff_base_ms = 1\nbudget_percent = 10\n"
                              "min_retry_concurrency = 1\n[outlier]\nenabled = false\n",
                          {"--access-log", "off"});
  const auto report = run_bench(gw, {"--requests", "60", "--connections", "20", "--stream", "true"});
  EXPECT_EQ(report.at("succeeded").to_number<std::uint64_t>(), 0U);
  EXPECT_GT(metric_value(gw.admin_port, "nines_retry_budget_exhausted_total"), 0U);
  // 60 requests with up to 3 attempts each would be 180 attempts; the budget keeps it far lower.
  const auto attempts = mock_stat(a.port, "requests") + mock_stat(b.port, "requests");
  EXPECT_LT(attempts, 110U);
  const auto one = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("q", false));
  EXPECT_TRUE(one.status == 503 || one.status == 504) << one.body;
}

TEST(gateway_health, a_flapping_primary_moves_the_tier_a_bounded_number_of_times) {
  auto primary = start_mock();
  auto backup = start_mock();
  auto chaos = start_chaos();
  const auto link = add_chaos_proxy(chaos, "primary", primary.port);
  auto gw = start_gateway("[routing]\ntier_hysteresis_ms = 1500\n[outlier]\nbase_ejection_ms = 500\n"
                          "[health]\ninterval_ms = 50\njitter_ms = 5\ntimeout_ms = 100\n"
                          "unhealthy_threshold = 1\nhealthy_threshold = 1\n"
                          "[retry]\nbackoff_base_ms = 1\n"
                          "\n[[upstreams]]\nname = \"primary\"\nurl = \"http://127.0.0.1:" +
                              std::to_string(link) + "/v1\"\npriority = 0\n" +
                              named("backup", backup, 1),
                          {"--access-log", "off"});
  std::atomic<bool> flapping{true};
  std::thread flapper([&] {
    // The fault schedule: the link goes down and up every 250 ms for 3 s.
    for (int i = 0; i < 12; ++i) {
      http_call(chaos.port, "POST", "/proxies/primary",
                i % 2 == 0 ? R"({"enabled":false})" : R"({"enabled":true})");
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    http_call(chaos.port, "POST", "/proxies/primary", R"({"enabled":true})");
    flapping = false;
  });
  int sent = 0;
  int ok = 0;
  while (flapping) {
    ++sent;
    ok += http_call(gw.port, "POST", "/v1/chat/completions", chat_body("f", true)).status == 200;
  }
  flapper.join();
  EXPECT_EQ(ok, sent);
  // Away once; not back while it flaps (it is never healthy for 1.5 s in a row).
  const auto switches = status_of(gw).at("tier").at("switches").to_number<int>();
  EXPECT_GE(switches, 1);
  EXPECT_LE(switches, 2);
  EXPECT_EQ(status_of(gw).at("tier").at("active_priority").to_number<int>(), 1);
  // Once it has stayed healthy for the hysteresis time, the traffic goes back.
  ASSERT_TRUE(drive_until(gw, [&] {
    return status_of(gw).at("tier").at("active_priority").to_number<int>() == 0;
  }, 20000));
  EXPECT_LE(status_of(gw).at("tier").at("switches").to_number<int>(), 2);
}

TEST(gateway_health, hedging_takes_the_slow_upstream_out_of_the_first_byte_tail) {
  auto slow = start_mock({"--faults", "ttft_ms=2000"});
  auto fast = start_mock({"--faults", "ttft_ms=10"});
  const std::string upstreams = named("slow", slow) + named("fast", fast);
  auto hedged = start_gateway("[hedge]\nroutes = [\"chat\"]\ninitial_delay_ms = 100\n"
                              "[outlier]\nenabled = false\n" + upstreams,
                              {"--access-log", "off"});
  const auto with = run_bench(hedged, {"--requests", "40", "--connections", "4", "--stream", "true"});
  EXPECT_EQ(with.at("succeeded").to_number<std::uint64_t>(), 40U);
  // Requests that drew the slow upstream were hedged after 100 ms: none waited for its 2 s.
  EXPECT_LT(with.at("ttft_ms").at("max").to_number<double>(), 1000.0) << json::serialize(with);
  EXPECT_GT(metric_value(hedged.admin_port, R"(nines_hedges_total{result="won"})"), 0U);
  // The losers were cancelled: the slow server saw its clients go away.
  EXPECT_TRUE([&] {
    for (int i = 0; i < 200000; ++i) {
      if (mock_stat(slow.port, "aborted") > 0) {
        return true;
      }
      std::this_thread::yield();
    }
    return false;
  }());
  // Per request, with the header, on a gateway that does not hedge by default.
  auto plain = start_gateway("[outlier]\nenabled = false\n[hedge]\nallow_client_header = true\n" +
                                 upstreams,
                             {"--access-log", "off"});
  const auto header = run_bench(plain, {"--requests", "20", "--connections", "4", "--stream", "true",
                                        "--header", "x-nines-hedge: 100"});
  EXPECT_LT(header.at("ttft_ms").at("max").to_number<double>(), 1000.0);
}

TEST(gateway_health, an_upstream_that_hedges_beat_stops_getting_first_attempts) {
  // Its attempts are cancelled by the hedges that beat them, so it has nothing in flight and
  // would look like the least loaded upstream: without its lost races counted, it drew most
  // first attempts here, and most requests waited for a hedge.
  auto slow = start_mock({"--faults", "ttft_ms=1000,tpot_ms=5"});
  auto fast_a = start_mock({"--faults", "ttft_ms=10,tpot_ms=5"});
  auto fast_b = start_mock({"--faults", "ttft_ms=10,tpot_ms=5"});
  auto gw = start_gateway("[hedge]\nroutes = [\"chat\"]\ninitial_delay_ms = 100\n" +
                              named("slow", slow) + named("fast-a", fast_a) +
                              named("fast-b", fast_b),
                          {"--access-log", "off"});
  const auto r = run_bench(gw, {"--requests", "150", "--rate", "50", "--duration", "3",
                                "--connections", "100", "--stream", "true"});
  EXPECT_EQ(r.at("succeeded").to_number<std::uint64_t>(), 150U);
  const auto sent = metric_value(gw.admin_port, R"(nines_hedges_total{result="sent"})");
  EXPECT_GT(metric_value(gw.admin_port, R"(nines_hedges_total{result="won"})"), 0U);
  EXPECT_LT(sent, 150U / 4) << "first attempts that went to the slow upstream";
}

TEST(gateway_health, limits_refuse_with_a_503_that_names_the_limit) {
  auto slow = start_mock({"--faults", "ttft_ms=3000"});
  auto gw = start_gateway("\n[[upstreams]]\nname = \"only\"\nurl = \"" + slow.url() +
                          "/v1\"\nmax_requests = 2\n");
  std::vector<std::thread> two;
  for (const char* p : {"a", "b"}) {
    two.emplace_back([&, p] { http_call(gw.port, "POST", "/v1/chat/completions", chat_body(p, true)); });
  }
  // Both are in flight (the mock has started their streams); a third is refused at once, not
  // queued.
  ASSERT_TRUE(eventually([&] { return mock_stat(slow.port, "streams") >= 2; }));
  auto third = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("c", true));
  for (auto& t : two) {
    t.join();
  }
  EXPECT_EQ(third.status, 503U);
  EXPECT_NE(third.body.find("max_requests (2)"), std::string::npos) << third.body;
  EXPECT_NE(third.body.find("upstream_limit_reached"), std::string::npos);
  EXPECT_EQ(third.headers["retry-after"], "1");
  EXPECT_EQ(metric_value(gw.admin_port, R"(nines_overflow_total{limit="max_requests"})"), 1U);
}

TEST(gateway_health, a_full_pending_queue_overflows_clearly) {
  auto slow = start_mock({"--faults", "ttft_ms=1500"});
  auto gw = start_gateway("\n[[upstreams]]\nname = \"only\"\nurl = \"" + slow.url() +
                              "/v1\"\nmax_connections = 1\nmax_pending = 1\n"
                              "[retry]\nmax_attempts = 1\n",
                          {"--workers", "1"});
  std::optional<response> first;
  std::thread holder([&] {  // takes the one connection for 1.5 s
    first = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("a", true));
  });
  ASSERT_TRUE(eventually([&] { return mock_stat(slow.port, "streams") >= 1; }));
  std::optional<response> second;
  std::thread waiter([&] {
    second = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("b", false));
  });
  // The second waits for the connection (the pool says so); the third finds the queue full.
  ASSERT_TRUE(eventually([&] {
    return status_of(gw).at("upstreams").at("only").at("pool").at("pending").to_number<int>() == 1;
  }));
  auto third = http_call(gw.port, "POST", "/v1/chat/completions", chat_body("c", false));
  EXPECT_EQ(third.status, 503U);
  EXPECT_NE(third.body.find("max_pending (1)"), std::string::npos) << third.body;
  holder.join();
  waiter.join();
  EXPECT_EQ(first->status, 200U);
  EXPECT_EQ(second->status, 200U);  // it got the connection when the first stream ended
}

TEST(gateway_health, a_reload_under_streaming_load_drops_nothing) {
  auto a = start_mock({"--faults", "tpot_ms=2"});
  auto b = start_mock({"--faults", "tpot_ms=2"});
  auto c = start_mock({"--faults", "tpot_ms=2"});
  const std::string path = "/tmp/nines-reload-" + std::to_string(::getpid()) + ".toml";
  const std::string head = "[gateway]\nlisten = \"127.0.0.1:0\"\nworkers = 2\naccess_log = \"off\"\n"
                           "[admin]\nlisten = \"127.0.0.1:0\"\n";
  const auto replace = [&](const std::string& body) {  // a new file (a new inode)
    std::ofstream(path + ".tmp") << head << body;
    std::rename((path + ".tmp").c_str(), path.c_str());
  };
  replace(named("a", a) + "weight = 1\n" + named("b", b));
  process gw_proc({NINES_BINARY, "gateway", "--config", path});
  const auto admin = gw_proc.wait_for_output("nines admin listening on");
  const auto line = gw_proc.wait_for_output("nines gateway listening on");
  ASSERT_TRUE(line && admin);
  server gw;
  gw.port = static_cast<unsigned short>(std::stoi(line->substr(line->rfind(':', line->find(" with ")) + 1)));
  gw.admin_port = static_cast<unsigned short>(std::stoi(admin->substr(admin->rfind(':') + 1)));
  std::thread load([&] {
    const auto report = run_bench(gw, {"--requests", "1500", "--connections", "16", "--stream", "true"});
    EXPECT_EQ(report.at("succeeded").to_number<std::uint64_t>(), 1500U) << json::serialize(report);
  });
  ASSERT_TRUE(eventually([&] { return mock_stat(a.port, "completed") >= 100; }));
  // SIGHUP: the file rewritten in place, same size, same time stamp, so that only the signal
  // can make the gateway read it again.
  struct stat before {};
  ::stat(path.c_str(), &before);
  {
    std::ofstream(path, std::ios::in | std::ios::out) << head << named("a", a) << "weight = 3\n"
                                                      << named("b", b);
  }
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ::utimensat(AT_FDCWD, path.c_str(), times, 0);
  gw_proc.signal(SIGHUP);
  EXPECT_TRUE(gw_proc.wait_for_output("configuration reloaded (SIGHUP): version 2"));
  EXPECT_EQ(status_of(gw).at("upstreams").at("a").at("weight").to_number<int>(), 3);
  // An invalid file is refused with its problems; the running configuration stays.
  replace("[[upstreams]]\nurl = \"ftp://nowhere\"\n");
  EXPECT_TRUE(gw_proc.wait_for_output("is invalid; the running configuration stays"));
  EXPECT_TRUE(gw_proc.wait_for_output("upstreams[0].url: must start with http"));
  EXPECT_EQ(status_of(gw).at("config_version").to_number<int>(), 2);
  // A valid change of the file alone is applied.
  replace(named("a", a) + named("c", c));
  EXPECT_TRUE(gw_proc.wait_for_output("configuration reloaded (the file changed): version 3"));
  load.join();
  const auto s = status_of(gw);
  EXPECT_EQ(s.at("config_version").to_number<int>(), 3);
  EXPECT_TRUE(s.at("upstreams").as_object().contains("c"));
  EXPECT_FALSE(s.at("upstreams").as_object().contains("b"));
  EXPECT_GT(mock_stat(c.port, "completed"), 0U);
}

TEST(nines_probe, reports_quality_and_fails_past_the_thresholds) {
  auto mock = start_mock();
  process good({NINES_BINARY, "probe", "--count", "5", "--interval-ms", "10",
                "http://127.0.0.1:" + std::to_string(mock.port) + "/health",
                "tcp://127.0.0.1:" + std::to_string(mock.port)});
  EXPECT_EQ(good.wait_exit(), 0) << good.output();
  EXPECT_NE(good.output().find("rtt normal, loss normal, jitter normal"), std::string::npos);
  auto refusing = start_mock({"--refuse"});
  process refused({NINES_BINARY, "probe", "--count", "3", "--interval-ms", "10",
                   "127.0.0.1:" + std::to_string(refusing.port)});
  EXPECT_EQ(refused.wait_exit(), 1);
  EXPECT_NE(refused.output().find("100.0%"), std::string::npos);
  auto chaos = start_chaos();
  const auto link = add_chaos_proxy(chaos, "slow", mock.port);
  ASSERT_EQ(http_call(chaos.port, "POST", "/proxies/slow/toxics",
                      R"({"type":"latency","attributes":{"latency":350}})")
                .status,
            200U);
  process slow({NINES_BINARY, "probe", "--count", "3", "--interval-ms", "10", "--json",
                "http://127.0.0.1:" + std::to_string(link) + "/health"});
  EXPECT_EQ(slow.wait_exit(), 1);
  const auto out = json::parse(slow.output().substr(slow.output().find('['))).as_array();
  EXPECT_EQ(out.at(0).at("level").as_string(), "alert");
  EXPECT_GT(out.at(0).at("rtt_ewma_ms").to_number<double>(), 300.0);
  process bad({NINES_BINARY, "probe", "ftp://x"});
  EXPECT_EQ(bad.wait_exit(), 2);
}

}  // namespace
}  // namespace nines::test
