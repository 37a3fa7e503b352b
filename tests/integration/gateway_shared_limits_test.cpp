// A client key's per-minute limits across three gateway replicas on one Redis
// (auth.shared_limits): the key limited to 600 requests a minute and offered 1,800 at once,
// spread over the three, gets 600 +- 2% admitted in all (each replica alone would admit 600);
// and with Redis gone, each mode does what it says: "local-share" admits this replica's share
// (the limit divided by the replicas it last saw alive), "closed" refuses with 503, "open" admits.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "core/access/secret_digest.hpp"
#include "harness.hpp"
#include "redis_harness.hpp"

namespace nines::test {
namespace {

const std::string secret = "nk-shared-limits-test-secret";

std::string keys_file(unsigned requests_per_minute, unsigned tokens_per_minute = 0) {
  const auto path = temp_path(".toml");
  std::ofstream(path) << "[[keys]]\nid = \"agents\"\nhash = \""
                      << core::format_secret_digest(core::sha256_of(secret))
                      << "\"\nmodels = [\"*\"]\nrequests_per_minute = " << requests_per_minute
                      << "\ntokens_per_minute = " << tokens_per_minute << "\n";
  return path;
}

std::string replica_toml(const std::string& keys, const std::string& mode,
                         const std::string& mock_url, const std::string& redis_host) {
  return "[auth]\nkeys_file = \"" + keys + "\"\nshared_limits = \"" + mode + "\"\n" +
         upstreams_toml({mock_url}) + "\n[journal]\nmode = \"keyed\"\nstore = \"redis://" +
         redis_host + ":6379/0\"\n";
}

std::string error_code_of(const response& r) {
  const auto v = boost::json::parse(r.body);
  return std::string(v.as_object().at("error").as_object().at("code").as_string());
}

const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + secret}};

TEST(shared_limits, a_key_offered_three_times_its_limit_across_three_replicas_gets_its_limit) {
  auto redis = start_redis("127.78.35.1");
  auto mock = start_mock({});
  const auto toml = replica_toml(keys_file(600), "local-share", mock.url(), "127.78.35.1");
  std::vector<server> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas.push_back(start_gateway(toml, {"--access-log", "off"}));
  }
  ASSERT_TRUE(eventually([&] {
    for (const auto& r : replicas) {
      if (metric_value(r.admin_port, "nines_live_replicas") != 3) {
        return false;
      }
    }
    return true;
  }));
  constexpr int offered = 1800;
  constexpr int threads_count = 6;
  std::atomic<int> next{0};
  std::atomic<int> admitted{0};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < threads_count; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < offered; i = next++) {
        const auto port = replicas[static_cast<std::size_t>(i) % replicas.size()].port;
        const auto r = http_call(port, "POST", "/v1/chat/completions",
                                 chat_body("limit " + std::to_string(i), false), auth);
        if (r.status == 200) {
          ++admitted;
        } else if (r.status == 429 && error_code_of(r) == "rate_limit_exceeded" &&
                   r.body.find("across replicas") != std::string::npos) {
          ++refused;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(admitted.load() + refused.load(), offered);
  EXPECT_GE(admitted.load(), 588);  // 600 - 2%
  EXPECT_LE(admitted.load(), 612);  // 600 + 2%
  // Every admission went through the shared count, and some were served from a replica's
  // allowance without a call to Redis.
  std::uint64_t by_allowance = 0;
  std::uint64_t by_redis = 0;
  for (const auto& r : replicas) {
    by_allowance += metric_value(
        r.admin_port, R"(nines_shared_limit_decisions_total{by="allowance",outcome="admitted"})");
    by_redis += metric_value(
        r.admin_port, R"(nines_shared_limit_decisions_total{by="redis",outcome="admitted"})");
    EXPECT_EQ(metric_value(r.admin_port,
                           R"(nines_shared_limit_decisions_total{by="store_away",outcome="any"})"),
              0U);
  }
  std::printf("admitted %d of %d: %llu from a replica's allowance, %llu by a call to Redis\n",
              admitted.load(), offered, static_cast<unsigned long long>(by_allowance),
              static_cast<unsigned long long>(by_redis));
  EXPECT_EQ(by_allowance + by_redis, static_cast<std::uint64_t>(admitted.load()));
  EXPECT_GT(by_allowance, 0U);
}

TEST(shared_limits, with_redis_gone_each_mode_does_what_it_says) {
  auto redis = start_redis("127.78.35.2");
  auto mock = start_mock({});
  // Two keys: "agents" follows each replica's mode, "strict" is closed wherever it goes.
  const auto keys = keys_file(30);
  const std::string strict_secret = "nk-shared-limits-strict";
  std::ofstream(keys, std::ios::app)
      << "[[keys]]\nid = \"strict\"\nhash = \""
      << core::format_secret_digest(core::sha256_of(strict_secret))
      << "\"\nmodels = [\"*\"]\nrequests_per_minute = 30\nwhen_limits_store_away = \"closed\"\n";
  auto share = start_gateway(replica_toml(keys, "local-share", mock.url(), "127.78.35.2"),
                             {"--access-log", "off"});
  auto closed = start_gateway(replica_toml(keys, "closed", mock.url(), "127.78.35.2"),
                              {"--access-log", "off"});
  auto open =
      start_gateway(replica_toml(keys, "open", mock.url(), "127.78.35.2"), {"--access-log", "off"});
  ASSERT_TRUE(
      eventually([&] { return metric_value(share.admin_port, "nines_live_replicas") == 3; }));
  // One request through each while Redis is there: counted in Redis, admitted.
  for (const auto* gw : {&share, &closed, &open}) {
    EXPECT_EQ(
        http_call(gw->port, "POST", "/v1/chat/completions", chat_body("up", false), auth).status,
        200U);
  }
  redis.proc->signal(SIGKILL);
  redis.proc->wait_exit();
  const auto send = [&](const server& gw, int n, std::map<unsigned, int>& statuses,
                        std::set<std::string>& codes) {
    for (int i = 0; i < n; ++i) {
      const auto r = http_call(gw.port, "POST", "/v1/chat/completions",
                               chat_body("down " + std::to_string(i), false), auth);
      ++statuses[r.status];
      if (r.status != 200) {
        codes.insert(error_code_of(r));
      }
    }
  };
  // local-share: its last minute (the request above included) within 30 / 3 replicas.
  std::map<unsigned, int> statuses;
  std::set<std::string> codes;
  send(share, 30, statuses, codes);
  EXPECT_EQ(statuses[200], 9) << "10 in its share, one of them taken before Redis went";
  EXPECT_EQ(statuses[429], 21);
  EXPECT_EQ(codes, std::set<std::string>{"rate_limit_exceeded"});
  // closed: refused while the shared count cannot be asked.
  statuses.clear();
  codes.clear();
  send(closed, 3, statuses, codes);
  EXPECT_EQ(statuses[503], 3);
  EXPECT_EQ(codes, std::set<std::string>{"rate_limit_store_unavailable"});
  // open: admitted, up to what the replica itself may admit (the whole limit).
  statuses.clear();
  codes.clear();
  send(open, 30, statuses, codes);
  EXPECT_EQ(statuses[200], 29);
  EXPECT_EQ(statuses[429], 1);
  // A key that says closed is closed on the open replica too.
  const auto strict = http_call(open.port, "POST", "/v1/chat/completions", chat_body("s", false),
                                {{"Authorization", "Bearer " + strict_secret}});
  EXPECT_EQ(strict.status, 503U);
  EXPECT_EQ(error_code_of(strict), "rate_limit_store_unavailable");
  EXPECT_GT(metric_value(open.admin_port,
                         R"(nines_shared_limit_decisions_total{by="store_away",outcome="any"})"),
            0U);
}

// Tokens are reserved across replicas (max_tokens) and settled from the answers' usage: three
// answers reserving 1,000 each fill a 3,000-token minute, and once their few tokens are settled a
// fourth fits, on another replica.
TEST(shared_limits, token_reservations_are_settled_across_replicas_from_usage) {
  auto redis = start_redis("127.78.35.3");
  auto mock = start_mock({});
  const auto toml = replica_toml(keys_file(0, 3000), "closed", mock.url(), "127.78.35.3");
  auto a = start_gateway(toml, {"--access-log", "off"});
  auto b = start_gateway(toml, {"--access-log", "off"});
  ASSERT_TRUE(eventually([&] { return metric_value(a.admin_port, "nines_live_replicas") == 2; }));
  const auto body = [](int i) {
    return R"({"model":"mock-model","max_tokens":1000,"messages":[{"role":"user","content":"t)" +
           std::to_string(i) + R"("}]})";
  };
  for (int i = 0; i < 3; ++i) {
    const auto r =
        http_call((i % 2 == 0 ? a : b).port, "POST", "/v1/chat/completions", body(i), auth);
    ASSERT_EQ(r.status, 200U) << r.body;
    ASSERT_NE(r.body.find("\"total_tokens\""), std::string::npos);
  }
  // Admitted once the settlements reached Redis (each answer used far fewer than 1,000).
  EXPECT_TRUE(eventually(
      [&] {
        return http_call(b.port, "POST", "/v1/chat/completions", body(3), auth).status == 200;
      },
      std::chrono::milliseconds(5000)));
  // And a reservation past the whole minute is refused across replicas, for its tokens.
  const auto big =
      R"({"model":"mock-model","max_tokens":3001,"messages":[{"role":"user","content":"x"}]})";
  const auto r = http_call(a.port, "POST", "/v1/chat/completions", big, auth);
  EXPECT_EQ(r.status, 429U);
  EXPECT_NE(r.body.find("tokens per minute"), std::string::npos) << r.body;
}

// The shared limits hold no worker open: an idle replica that had used them stops at SIGTERM as
// soon as it has nothing in flight, not when its drain timeout runs out.
TEST(shared_limits, a_replica_that_used_them_drains_without_waiting_out_its_timeout) {
  auto redis = start_redis("127.78.35.4");
  auto mock = start_mock({});
  auto gw = start_gateway_with("drain_timeout_ms = 60000\n",
                               replica_toml(keys_file(600), "closed", mock.url(), "127.78.35.4"),
                               {"--access-log", "off"});
  ASSERT_TRUE(eventually([&] { return metric_value(gw.admin_port, "nines_live_replicas") == 1; }));
  EXPECT_EQ(
      http_call(gw.port, "POST", "/v1/chat/completions", chat_body("one", false), auth).status,
      200U);
  gw.proc->signal(SIGTERM);
  EXPECT_EQ(gw.proc->wait_exit(), 0);
  EXPECT_EQ(gw.proc->output().find("drain timeout reached"), std::string::npos)
      << gw.proc->output();
}

TEST(shared_limits, a_config_without_the_store_is_refused_with_its_place) {
  const auto path = temp_path(".toml");
  std::ofstream(path) << "[gateway]\nlisten = \"127.0.0.1:0\"\n[auth]\nkeys_file = \""
                      << keys_file(10) << "\"\nshared_limits = \"local-share\"\n"
                      << upstreams_toml({"http://127.0.0.1:9"});
  process check({binary(), "gateway", "--config", path, "--check"});
  EXPECT_EQ(check.wait_exit(), 2);
  EXPECT_NE(check.output().find("auth.shared_limits"), std::string::npos) << check.output();
  EXPECT_NE(check.output().find("journal.store"), std::string::npos) << check.output();
}

}  // namespace
}  // namespace nines::test
