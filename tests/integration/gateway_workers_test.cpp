// The default number of workers: one per CPU the process may run on (its affinity mask, as a
// container's cpuset or `taskset` sets it), not one per core of the machine.

#include <gtest/gtest.h>
#include <boost/json.hpp>
#include <sched.h>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

unsigned workers_of(const server& gw) {
  const auto status = json::parse(http_call(gw.admin_port, "GET", "/status").body).as_object();
  return static_cast<unsigned>(status.at("workers").to_number<std::uint64_t>());
}

TEST(gateway_workers, by_default_one_per_cpu_of_the_affinity_mask) {
  auto mock = start_mock();
  const auto toml = upstreams_toml({mock.url()});
  auto pinned = start_gateway_under({"/usr/bin/taskset", "-c", "0"}, toml);
  EXPECT_EQ(workers_of(pinned), 1u) << "pinned to one CPU: one worker";

  cpu_set_t mine;
  CPU_ZERO(&mine);
  ASSERT_EQ(::sched_getaffinity(0, sizeof mine, &mine), 0);
  auto free_to_run = start_gateway_under({}, toml);
  EXPECT_EQ(workers_of(free_to_run), static_cast<unsigned>(CPU_COUNT(&mine)));
}

}  // namespace
}  // namespace nines::test
