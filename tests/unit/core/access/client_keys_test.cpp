#include "core/access/client_keys.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using std::chrono::hours;

const wall_time t2026 = wall_time(std::chrono::seconds(1796083200));  // 2026-12-01T00:00:00Z

std::string digest_of(std::string_view secret) { return format_secret_digest(sha256_of(secret)); }

client_keys parse_ok(const std::string& text) {
  auto r = parse_client_keys(text, "keys.toml");
  EXPECT_TRUE(r.problems.empty()) << (r.problems.empty() ? "" : r.problems[0].message);
  return r.value.value_or(client_keys{});
}

TEST(client_keys, a_secret_finds_its_key_by_digest_and_nothing_else_does) {
  const auto keys = parse_ok("[[keys]]\nid = \"agent-1\"\nhash = \"" + digest_of("s3cret-one") +
                             "\"\nmodels = [\"*\"]\n[[keys]]\nid = \"agent-2\"\nhash = \"" +
                             digest_of("s3cret-two") + "\"\nmodels = [\"qwen*\"]\n");
  auto m = keys.find("Bearer s3cret-two", t2026);
  ASSERT_EQ(m.result, client_keys::verdict::ok);
  EXPECT_EQ(m.key->id, "agent-2");
  EXPECT_EQ(keys.find("bearer   s3cret-one", t2026).key->id, "agent-1");
  EXPECT_EQ(keys.find("Bearer s3cret-thr", t2026).result, client_keys::verdict::unknown);
  EXPECT_EQ(keys.find("", t2026).result, client_keys::verdict::missing);
  EXPECT_EQ(keys.find("Basic czNjcmV0", t2026).result, client_keys::verdict::malformed);
  EXPECT_EQ(keys.find("Bearer", t2026).result, client_keys::verdict::malformed);
  EXPECT_EQ(keys.find("Bearer a b", t2026).result, client_keys::verdict::malformed);
  // The digest itself is not a secret that works.
  EXPECT_EQ(keys.find("Bearer " + digest_of("s3cret-one"), t2026).result,
            client_keys::verdict::unknown);
}

TEST(client_keys, rotation_keeps_the_previous_secret_until_its_grace_ends) {
  const auto keys = parse_ok("[[keys]]\nid = \"k\"\nhash = \"" + digest_of("new") +
                             "\"\nprevious_hash = \"" + digest_of("old") +
                             "\"\nprevious_expires = 2026-12-01T12:00:00Z\nmodels = [\"*\"]\n");
  EXPECT_EQ(keys.find("Bearer new", t2026).result, client_keys::verdict::ok);
  const auto old = keys.find("Bearer old", t2026 + hours(11));
  EXPECT_EQ(old.result, client_keys::verdict::ok);
  EXPECT_TRUE(old.by_previous);
  EXPECT_EQ(keys.find("Bearer old", t2026 + hours(12)).result, client_keys::verdict::expired);
  EXPECT_EQ(keys.find("Bearer new", t2026 + hours(9999)).result, client_keys::verdict::ok);
}

TEST(client_keys, an_expired_key_is_found_and_refused) {
  const auto keys = parse_ok("[[keys]]\nid = \"k\"\nhash = \"" + digest_of("x") +
                             "\"\nexpires = \"2026-12-01T01:00:00+01:00\"\nmodels = [\"*\"]\n");
  EXPECT_EQ(keys.find("Bearer x", t2026 - hours(1) - std::chrono::seconds(1)).result,
            client_keys::verdict::ok);
  EXPECT_EQ(keys.find("Bearer x", t2026).result, client_keys::verdict::expired);  // 00:00Z
}

TEST(client_keys, every_problem_of_a_keys_file_is_listed_with_its_place) {
  const auto r = parse_client_keys(
      "[[keys]]\nid = \"a b\"\nhash = \"s3cret-in-clear\"\nmodels = [\"\"]\nexpires = "
      "2027-01-01T00:00:00\nprevious_hash = \"" + digest_of("p") + "\"\nlimit = 3\n"
      "[[keys]]\nmodels = []\n",
      "keys.toml");
  EXPECT_FALSE(r.value);
  std::vector<std::string> keys;
  for (const auto& p : r.problems) {
    keys.push_back(p.key);
    EXPECT_GT(p.line, 0) << p.key;
  }
  for (const char* k : {"keys[0].id", "keys[0].hash", "keys[0].models[0]", "keys[0].expires",
                        "keys[0].previous_expires", "keys[0].limit", "keys[1].id", "keys[1].hash"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  }
}

TEST(client_keys, a_key_may_say_what_its_shared_limits_do_while_redis_is_away) {
  const auto keys = parse_ok("[[keys]]\nid = \"a\"\nhash = \"" + digest_of("a") +
                             "\"\nwhen_limits_store_away = \"closed\"\n[[keys]]\nid = \"b\"\n"
                             "hash = \"" +
                             digest_of("b") + "\"\n");
  EXPECT_EQ(keys.find("Bearer a", t2026).key->when_store_away, limits_store_away::closed);
  EXPECT_EQ(keys.find("Bearer b", t2026).key->when_store_away, limits_store_away::as_configured);
  const auto bad = parse_client_keys("[[keys]]\nid = \"a\"\nhash = \"" + digest_of("a") +
                                         "\"\nwhen_limits_store_away = \"shared\"\n",
                                     "keys.toml");
  ASSERT_EQ(bad.problems.size(), 1U);
  EXPECT_EQ(bad.problems[0].key, "keys[0].when_limits_store_away");
}

TEST(client_keys, duplicate_ids_and_secrets_are_refused) {
  const auto h = digest_of("same");
  const auto r = parse_client_keys("[[keys]]\nid = \"a\"\nhash = \"" + h + "\"\n[[keys]]\nid = \"a\"\n"
                                   "hash = \"" + h + "\"\n",
                                   "keys.toml");
  ASSERT_EQ(r.problems.size(), 2U);
}

TEST(client_keys, models_are_glob_patterns_and_none_means_none) {
  client_key k;
  EXPECT_FALSE(model_allowed(k, "anything"));
  k.models = {"qwen2.5-vl-*", "autoglm-phone-?b"};
  EXPECT_TRUE(model_allowed(k, "qwen2.5-vl-7b"));
  EXPECT_TRUE(model_allowed(k, "autoglm-phone-9b"));
  EXPECT_FALSE(model_allowed(k, "autoglm-phone-10b"));
  EXPECT_FALSE(model_allowed(k, "qwen2.5-7b"));
  EXPECT_TRUE(glob_matches("*", ""));
  EXPECT_TRUE(glob_matches("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_matches("a*b*c", "aXXbYY"));
}

TEST(client_keys, new_secrets_are_long_random_and_their_entry_holds_only_the_digest) {
  const auto a = new_client_secret();
  const auto b = new_client_secret();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 3U + 43U);
  EXPECT_TRUE(a.starts_with("nk-"));
  const auto entry = client_key_entry("agent-7", sha256_of(a), {"qwen*"});
  EXPECT_EQ(entry.find(a), std::string::npos);
  const auto parsed = parse_ok(entry);
  EXPECT_EQ(parsed.find("Bearer " + a, t2026).key->id, "agent-7");
}

TEST(secret_digest, compares_equal_digests_equal_and_parses_its_own_format) {
  const auto d = sha256_of("abc");
  EXPECT_EQ(format_secret_digest(d),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(parse_secret_digest(format_secret_digest(d)), d);
  auto other = d;
  other[31] ^= 1;
  EXPECT_TRUE(same_digest(d, d));
  EXPECT_FALSE(same_digest(d, other));
  EXPECT_FALSE(parse_secret_digest("sha256:xyz"));
  EXPECT_FALSE(parse_secret_digest("md5:" + std::string(64, 'a')));
}

TEST(secret_digest, only_visible_ascii_may_be_sent_as_a_bearer_secret) {
  EXPECT_TRUE(sendable_secret("sk-abc.DEF_123~+/="));
  EXPECT_TRUE(sendable_secret(std::string(8192, 'a')));
  EXPECT_FALSE(sendable_secret(std::string(8193, 'a')));
  EXPECT_FALSE(sendable_secret(""));
  EXPECT_FALSE(sendable_secret("sk-a b"));
  EXPECT_FALSE(sendable_secret("sk-a\r\nx-injected: 1"));
  EXPECT_FALSE(sendable_secret("sk-\t"));
  EXPECT_FALSE(sendable_secret("sk-\x7f"));
  EXPECT_FALSE(sendable_secret("sk-caf\xc3\xa9"));
}

}  // namespace
}  // namespace nines::core
