// [uploads] (tus at /v1/uploads) and each uplink's upload_threshold_bytes: defaults, bounds, and
// the rule that uploads are for client keys only.

#include <gtest/gtest.h>

#include "core/config/config.hpp"
#include "config_problems.hpp"

namespace nines::core {
namespace {

const std::string upstream = "[[upstreams]]\nurl = \"http://127.0.0.1:9001\"\n";

TEST(uploads_config, off_by_default_and_read_with_their_bounds) {
  auto plain = parse_config(upstream, "gw.toml");
  ASSERT_TRUE(plain.problems.empty());
  EXPECT_FALSE(plain.value->uploads.enabled());
  EXPECT_EQ(plain.value->upstreams[0].upload_threshold, 0u);  // a model server takes no tus

  auto r = parse_config(
      "[auth]\nkeys_file = \"keys.toml\"\n[uploads]\ndir = \"/var/lib/nines\"\n"
      "max_bytes = 2147483648\nmax_upload_bytes = 8388608\nmax_uploads = 100\n"
      "ttl_ms = 60000\n" +
          upstream,
      "gw.toml");
  ASSERT_TRUE(r.problems.empty()) << r.problems.front().message;
  const auto& u = r.value->uploads;
  EXPECT_TRUE(u.enabled());
  EXPECT_EQ(u.dir, "/var/lib/nines");
  EXPECT_EQ(u.max_bytes, 2147483648u);
  EXPECT_EQ(u.max_upload_bytes, 8388608u);
  EXPECT_EQ(u.max_uploads, 100u);
  EXPECT_EQ(u.ttl, std::chrono::milliseconds(60000));
}

TEST(uploads_config, uploads_need_client_keys_and_fit_a_request_body) {
  auto open = parse_config("[uploads]\ndir = \"/tmp/u\"\n" + upstream, "gw.toml");
  EXPECT_TRUE(has_problem(open, "uploads.dir", "client keys only"));
  auto big = parse_config(
      "[auth]\nkeys_file = \"k.toml\"\n[limits]\nmax_body_bytes = 1048576\n"
      "[uploads]\ndir = \"/tmp/u\"\n" +
          upstream,
      "gw.toml");
  EXPECT_TRUE(has_problem(big, "uploads.max_upload_bytes", "limits.max_body_bytes"));
  auto bad = parse_config(
      "[auth]\nkeys_file = \"k.toml\"\n[uploads]\ndir = \"/tmp/u\"\n"
      "ttl_ms = 10\nspeed = 1\n" +
          upstream,
      "gw.toml");
  EXPECT_TRUE(has_problem(bad, "uploads.ttl_ms", ""));
  EXPECT_TRUE(has_problem(bad, "uploads.speed", ""));
}

TEST(uploads_config, the_edge_sends_bodies_over_256_kib_as_uploads_unless_told_otherwise) {
  auto r = parse_config(
      "[[uplinks]]\nurl = \"http://10.0.0.5:8080\"\n"
      "[[uplinks]]\nurl = \"http://10.0.0.6:8000\"\nupload_threshold_bytes = 0\n"
      "[[uplinks]]\nurl = \"http://10.0.0.7:8080\"\n"
      "upload_threshold_bytes = 1048576\n",
      "edge.toml", config_role::edge);
  ASSERT_TRUE(r.problems.empty()) << r.problems.front().message;
  EXPECT_EQ(r.value->upstreams[0].upload_threshold, 256u << 10);
  EXPECT_EQ(r.value->upstreams[1].upload_threshold, 0u);
  EXPECT_EQ(r.value->upstreams[2].upload_threshold, 1u << 20);
  auto tiny =
      parse_config("[[uplinks]]\nurl = \"http://10.0.0.5:8080\"\nupload_threshold_bytes = 10\n",
                   "edge.toml", config_role::edge);
  EXPECT_TRUE(has_problem(tiny, "uplinks[0].upload_threshold_bytes", "at least 4096"));
}

TEST(cache_config, off_by_default_and_read_with_their_bounds) {
  auto plain = parse_config(upstream, "gw.toml");
  ASSERT_TRUE(plain.problems.empty());
  EXPECT_FALSE(plain.value->cache.enabled());
  auto r = parse_config("[cache]\nmax_bytes = 268435456\nmax_entry_bytes = 1048576\nttl_ms = 60000\n" +
                            upstream,
                        "gw.toml");
  ASSERT_TRUE(r.problems.empty()) << r.problems.front().message;
  EXPECT_TRUE(r.value->cache.enabled());
  EXPECT_EQ(r.value->cache.max_bytes, 268435456u);
  EXPECT_EQ(r.value->cache.max_entry_bytes, 1048576u);
  EXPECT_EQ(r.value->cache.ttl, std::chrono::milliseconds(60000));
  // The cache needs no client keys: its key holds who asks (a key's id, or nobody's on an open
  // loopback listener).
  auto bad = parse_config("[cache]\nmax_bytes = 65536\nttl_ms = 5\nmax_entry_bytes = 100\nsize = 1\n" +
                              upstream,
                          "gw.toml");
  EXPECT_TRUE(has_problem(bad, "cache.ttl_ms", ""));
  EXPECT_TRUE(has_problem(bad, "cache.max_entry_bytes", ""));
  EXPECT_TRUE(has_problem(bad, "cache.size", ""));
  auto above = parse_config("[cache]\nmax_bytes = 65536\nmax_entry_bytes = 65537\n" + upstream,
                            "gw.toml");
  EXPECT_TRUE(has_problem(above, "cache.max_entry_bytes", "cache.max_bytes"));
  EXPECT_TRUE(has_problem(parse_config("[cache]\nmax_bytes = 1000\n" + upstream, "gw.toml"),
                          "cache.max_bytes", "at least 65536"));
  auto sizeless = parse_config("[cache]\nttl_ms = 60000\n" + upstream, "gw.toml");
  EXPECT_TRUE(has_problem(sizeless, "cache.max_bytes", "required"));
  auto small = parse_config("[cache]\nmax_bytes = 65536\n" + upstream, "gw.toml");
  ASSERT_TRUE(small.problems.empty());
  EXPECT_EQ(small.value->cache.max_entry_bytes, 65536u);
}

}  // namespace
}  // namespace nines::core
