// [journal] store: the shared journal's address (core/redis/redis_store_address.hpp) and its
// keys, with every refusal a config file can earn.

#include <gtest/gtest.h>

#include "core/config/config.hpp"
#include "config_problems.hpp"
#include "core/redis/redis_store_address.hpp"

namespace nines::core {
namespace {

const std::string upstream = "[[upstreams]]\nurl = \"http://127.0.0.1:9001\"\n";

TEST(redis_store_address, a_server_and_sentinels_are_read) {
  auto one = parse_redis_store_address("redis://10.0.0.5:6379/3");
  ASSERT_TRUE(one.address) << one.problem;
  EXPECT_EQ(one.address->type, redis_store_address::kind::server);
  ASSERT_EQ(one.address->nodes.size(), 1U);
  EXPECT_EQ(one.address->nodes[0].host, "10.0.0.5");
  EXPECT_EQ(one.address->nodes[0].port, 6379);
  EXPECT_EQ(one.address->db, 3U);
  EXPECT_EQ(describe_redis_store_address(*one.address), "redis://10.0.0.5:6379/3");
  auto no_db = parse_redis_store_address("redis://[::1]:6380");
  ASSERT_TRUE(no_db.address) << no_db.problem;
  EXPECT_EQ(no_db.address->nodes[0].host, "::1");
  EXPECT_EQ(no_db.address->db, 0U);
  EXPECT_EQ(describe_redis_store_address(*no_db.address), "redis://[::1]:6380/0");

  auto sentinels = parse_redis_store_address(
      "redis-sentinel://10.0.0.7:26379,10.0.0.8:26379,[fe80::1]:26380/nines");
  ASSERT_TRUE(sentinels.address) << sentinels.problem;
  EXPECT_EQ(sentinels.address->type, redis_store_address::kind::sentinel);
  ASSERT_EQ(sentinels.address->nodes.size(), 3U);
  EXPECT_EQ(sentinels.address->nodes[1].host, "10.0.0.8");
  EXPECT_EQ(sentinels.address->nodes[2].port, 26380);
  EXPECT_EQ(sentinels.address->master_name, "nines");

  // Names (a Kubernetes Service): kept in lower case, resolved at each connect.
  auto named = parse_redis_store_address(
      "redis-sentinel://Nines-Sentinel.nines.svc.cluster.local:26379,nines-sentinel-1:26379/nines");
  ASSERT_TRUE(named.address) << named.problem;
  EXPECT_EQ(named.address->nodes[0].host, "nines-sentinel.nines.svc.cluster.local");
  EXPECT_EQ(named.address->nodes[1].host, "nines-sentinel-1");
  EXPECT_FALSE(parse_redis_store_address("redis-sentinel://Sentinel-0:26379,sentinel-0:26379/m")
                   .address);  // the same name twice
  EXPECT_FALSE(
      parse_redis_store_address("redis://" + std::string(64, 'a') + ":6379").address);  // a label
}

TEST(redis_store_address, anything_ambiguous_or_secret_is_refused_with_what_is_wrong) {
  const std::pair<const char*, const char*> refused[] = {
      {"", "redis://"},
      {"rediss://10.0.0.5:6379", "redis://"},
      {"redis://:hunter2@10.0.0.5:6379", "password"},
      {"redis://user@10.0.0.5:6379", "password"},
      {"redis://10.0.0.5", "HOST:PORT"},
      {"redis://10.0.0.5:0", "HOST:PORT"},
      {"redis://10.0.0.5:65536", "HOST:PORT"},
      {"redis://redis..svc:6379", "neither an IP address nor a DNS name"},
      {"redis://-redis:6379", "neither an IP address nor a DNS name"},
      {"redis://redis_1:6379", "neither an IP address nor a DNS name"},
      {"redis://10.0.0.256:6379", "neither an IP address nor a DNS name"},
      {"redis://[redis]:6379", "neither an IP address nor a DNS name"},
      {"redis://10.0.0.5:6379/16", "0 to 15"},
      {"redis://10.0.0.5:6379/01", "0 to 15"},
      {"redis://10.0.0.5:6379/", "0 to 15"},
      {"redis://10.0.0.5:6379/x", "0 to 15"},
      {"redis://10.0.0.5:6379?db=1", "query"},
      {"redis://10.0.0.5:6379,10.0.0.6:6379", "one server"},
      {"redis://10.0.0.5:63 79", "printable"},
      {"redis-sentinel://10.0.0.7:26379", "MASTER-NAME"},
      {"redis-sentinel://10.0.0.7:26379/", "MASTER-NAME"},
      {"redis-sentinel://10.0.0.7:26379/a/b", "MASTER-NAME"},
      {"redis-sentinel://10.0.0.7:26379,10.0.0.7:26379/m", "twice"},
      {"redis-sentinel://10.0.0.7:26379,,10.0.0.8:26379/m", "HOST:PORT"},
  };
  for (const auto& [text, why] : refused) {
    const auto r = parse_redis_store_address(text);
    EXPECT_FALSE(r.address) << text;
    EXPECT_NE(r.problem.find(why), std::string::npos) << text << ": " << r.problem;
    EXPECT_EQ(r.problem.find("hunter2"), std::string::npos) << r.problem;
  }
  std::string many = "redis-sentinel://";
  for (int i = 1; i <= 17; ++i) {
    many += (i > 1 ? ",10.0.0." : "10.0.0.") + std::to_string(i) + ":26379";
  }
  EXPECT_FALSE(parse_redis_store_address(many + "/m").address);
}

TEST(journal_store_config, read_with_defaults_and_bounds) {
  auto plain = parse_config(upstream, "gw.toml");
  ASSERT_TRUE(plain.problems.empty());
  EXPECT_FALSE(plain.value->journal.store);  // the process's memory only, by default

  auto r = parse_config(
      "[journal]\nmode = \"keyed\"\nstore = \"redis-sentinel://10.0.0.7:26379/"
      "nines\"\nstore_password_file = \"/run/secrets/redis\"\n"
      "store_queue_bytes = 1048576\nstore_max_readers = 64\nstore_lease_ms = 5000\n" +
          upstream,
      "gw.toml");
  ASSERT_TRUE(r.problems.empty()) << r.problems.front().message;
  const auto& j = r.value->journal;
  ASSERT_TRUE(j.store);
  EXPECT_EQ(j.store->master_name, "nines");
  EXPECT_EQ(j.store_password_file, "/run/secrets/redis");
  EXPECT_EQ(j.store_queue_bytes, 1048576U);
  EXPECT_EQ(j.store_max_readers, 64U);
  EXPECT_EQ(j.store_lease, std::chrono::milliseconds(5000));
  EXPECT_EQ(plain.value->journal.store_lease, std::chrono::milliseconds(3000));
  EXPECT_EQ(j.wait_replicas(), 1U);  // with Sentinels: a failover must not lose a kept write

  auto direct = parse_config(
      "[journal]\nmode = \"all\"\nstore = \"redis://127.0.0.1:6379/0\"\n" + upstream, "gw.toml");
  ASSERT_TRUE(direct.problems.empty());
  EXPECT_EQ(direct.value->journal.wait_replicas(), 0U);
  auto waiting = parse_config(
      "[journal]\nmode = \"all\"\nstore = \"redis://127.0.0.1:6379/0\"\n"
      "store_wait_replicas = 2\n" +
          upstream,
      "gw.toml");
  ASSERT_TRUE(waiting.problems.empty());
  EXPECT_EQ(waiting.value->journal.wait_replicas(), 2U);
}

TEST(journal_store_config, every_problem_is_listed_at_its_key) {
  auto bad = parse_config(
      "[journal]\nmode = \"keyed\"\nstore = \"redis://:pw@10.0.0.5:6379\"\n"
      "store_queue_bytes = 10\nstore_max_readers = 0\nstore_speed = 1\nstore_lease_ms = 100\n" +
          upstream,
      "gw.toml");
  EXPECT_TRUE(has_problem(bad, "journal.store", "password"));
  EXPECT_TRUE(has_problem(bad, "journal.store_queue_bytes", ""));
  EXPECT_TRUE(has_problem(bad, "journal.store_max_readers", ""));
  EXPECT_TRUE(has_problem(bad, "journal.store_speed", ""));
  EXPECT_TRUE(has_problem(bad, "journal.store_lease_ms", ""));
  auto long_lease =
      parse_config("[journal]\nmode = \"keyed\"\nstore_lease_ms = 600001\n" + upstream, "gw.toml");
  EXPECT_TRUE(has_problem(long_lease, "journal.store_lease_ms", "at most 600000"));
  for (const auto& p : bad.problems) {
    EXPECT_EQ(p.message.find("pw@"), std::string::npos) << p.message;
  }
  // A store that nothing would write to, and a password file without a store.
  auto off = parse_config("[journal]\nstore = \"redis://10.0.0.5:6379\"\n" + upstream, "gw.toml");
  EXPECT_TRUE(has_problem(off, "journal.store", "journal.mode is \"off\""));
  auto lone = parse_config("[journal]\nmode = \"keyed\"\nstore_password_file = \"/p\"\n" + upstream,
                           "gw.toml");
  EXPECT_TRUE(has_problem(lone, "journal.store_password_file", "journal.store is not"));
  auto number = parse_config("[journal]\nmode = \"keyed\"\nstore = 6379\n" + upstream, "gw.toml");
  EXPECT_TRUE(has_problem(number, "journal.store", "must be a string"));
}

}  // namespace
}  // namespace nines::core
