// A rolling restart of three gateway replicas sharing the journal on Redis, under 100 clients that
// stream back to back, each through a load balancer of its own (the replicas it may use now). Each
// replica in turn leaves the balancer, gets SIGTERM, drains for a short while (300 ms: streams
// still running are then ended with the explicit, resumable gateway_draining break, never
// truncated) and is replaced by a new process. A client whose stream was cut reconnects with
// Last-Event-ID to a replica in the balancer, which takes the stream over (the drained replica
// gave its leases up when it stopped) and continues it. No stream may fail: every one ends with
// [DONE] and the exact answer, whatever replicas it crossed.

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "harness.hpp"
#include "redis_harness.hpp"

namespace nines::test {
namespace {

std::string replica_toml(const std::string& mock_url, const std::string& redis_host) {
  return upstreams_toml({mock_url}) + "\n[journal]\nmode = \"keyed\"\nstore = \"redis://" +
         redis_host + ":6379/0\"\nstore_lease_ms = 1000\n";
}

// The ports clients may use now: what a load balancer's endpoints are.
class balancer {
 public:
  void set(std::vector<unsigned short> ports) {
    std::lock_guard lock(mutex_);
    ports_ = std::move(ports);
  }
  // The i-th choice among the current ports (0 when there are none).
  unsigned short pick(std::size_t i) const {
    std::lock_guard lock(mutex_);
    return ports_.empty() ? 0 : ports_[i % ports_.size()];
  }

 private:
  mutable std::mutex mutex_;
  std::vector<unsigned short> ports_;
};

// The last event id in an SSE body, if any.
std::optional<std::string> last_id(const std::string& body) {
  const auto events = sse_events(body);
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->id) {
      return it->id;
    }
  }
  return std::nullopt;
}

TEST(rolling_restart, three_replicas_restarted_in_turn_under_100_streams_fail_none) {
  auto redis = start_redis("127.78.33.1");
  auto mock = start_mock({"--faults", "tpot_ms=50"});
  const auto toml = replica_toml(mock.url(), "127.78.33.1");
  std::vector<server> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas.push_back(
        start_gateway_with("drain_timeout_ms = 300\n", toml, {"--access-log", "off"}));
  }
  ASSERT_TRUE(eventually([&] {
    for (const auto& r : replicas) {
      if (metric_value(r.admin_port, "nines_redis_up") != 1) {
        return false;
      }
    }
    return true;
  }));
  balancer lb;
  lb.set({replicas[0].port, replicas[1].port, replicas[2].port});

  constexpr int clients = 100;
  constexpr int streams_each = 3;
  std::atomic<int> started{0};
  std::atomic<int> whole{0};
  std::atomic<int> reconnects{0};
  std::atomic<int> explicit_breaks{0};
  std::mutex failures_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      for (int s = 0; s < streams_each; ++s) {
        const std::string id = "roll-" + std::to_string(c) + "-" + std::to_string(s);
        const auto body = chat_body("rolling " + id, true);
        std::string got;  // every event received, across reconnects
        std::optional<std::string> last;
        bool done = false;
        if (s == 0) {
          ++started;
        }
        // Each try goes to the balancer's next choice; bounded.
        for (std::size_t attempt = 0; attempt < 8 && !done; ++attempt) {
          const auto port = lb.pick(static_cast<std::size_t>(c) + attempt);
          std::map<std::string, std::string> headers{{"X-Request-Id", id}};
          if (last) {
            headers["Last-Event-ID"] = *last;
            ++reconnects;
          }
          const auto r = http_call(port, "POST", "/v1/chat/completions", body, headers);
          if (r.status != 200) {
            continue;  // a replica that was leaving: the next choice
          }
          // A stream the drain cut ends with the explicit, resumable break: never truncated.
          if (r.body.find("data: [DONE]") == std::string::npos) {
            if (r.complete && r.body.find("\"gateway_draining\"") != std::string::npos) {
              ++explicit_breaks;
            } else {
              std::lock_guard lock(failures_mutex);
              failures.push_back(id + " cut without the explicit break: " +
                                 r.body.substr(r.body.size() > 300 ? r.body.size() - 300 : 0));
            }
          }
          // Whole events only, and not the break itself.
          const auto brk = r.body.find("data: {\"error\"");
          const auto kept = brk == std::string::npos ? r.body : r.body.substr(0, brk);
          const auto cut = kept.rfind("\n\n");
          const auto events_part =
              cut == std::string::npos ? std::string() : kept.substr(0, cut + 2);
          got += events_part;
          if (const auto id_now = last_id(events_part)) {
            last = id_now;
          }
          done = r.complete && r.body.find("data: [DONE]") != std::string::npos;
        }
        const auto events = sse_events(got);
        if (done && stream_text(events) == expected_answer(body, true)) {
          ++whole;
        } else {
          std::lock_guard lock(failures_mutex);
          failures.push_back(id + ": " + got.substr(got.size() > 300 ? got.size() - 300 : 0));
        }
      }
    });
  }
  EXPECT_TRUE(eventually([&] { return started.load() == clients; }));
  // Each replica in turn: out of the balancer, SIGTERM, drained, replaced.
  for (std::size_t i = 0; i < replicas.size(); ++i) {
    std::vector<unsigned short> others;
    for (std::size_t k = 0; k < replicas.size(); ++k) {
      if (k != i) {
        others.push_back(replicas[k].port);
      }
    }
    lb.set(others);
    replicas[i].proc->signal(SIGTERM);
    const auto status = replicas[i].proc->wait_exit();
    EXPECT_EQ(status, std::optional<int>(0)) << "replica " << i << ":\n"
                                             << replicas[i].proc->output();
    replicas[i] = start_gateway_with("drain_timeout_ms = 300\n", toml, {"--access-log", "off"});
    EXPECT_TRUE(
        eventually([&] { return metric_value(replicas[i].admin_port, "nines_redis_up") == 1; }));
    others.push_back(replicas[i].port);
    lb.set(others);
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(whole.load(), clients * streams_each);
  for (const auto& f : failures) {
    ADD_FAILURE() << f;
  }
  // The restarts did cut streams, each with the explicit break, and their clients went on
  // elsewhere.
  EXPECT_GT(explicit_breaks.load(), 0);
  EXPECT_GT(reconnects.load(), 0);
}

}  // namespace
}  // namespace nines::test
