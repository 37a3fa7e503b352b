#include "core/access/admission.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
const steady::time_point t0 = steady::time_point(std::chrono::hours(1000));
const wall_time w0 = wall_time(std::chrono::seconds(1796083200));

std::shared_ptr<const key_registry> registry_of(const std::string& toml,
                                                const key_registry* previous = nullptr) {
  auto r = parse_client_keys(toml, "keys.toml");
  EXPECT_TRUE(r.problems.empty()) << (r.problems.empty() ? "" : r.problems[0].message);
  return build_key_registry(r.value.value_or(client_keys{}), previous);
}

std::string key(const std::string& id, const std::string& secret, const std::string& extra) {
  return "[[keys]]\nid = \"" + id + "\"\nhash = \"" + format_secret_digest(sha256_of(secret)) +
         "\"\n" + extra;
}

std::string header(const access_refusal& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) {
      return v;
    }
  }
  return {};
}

TEST(admission, refuses_who_has_no_valid_key_with_401_and_says_why) {
  const auto reg = registry_of(key("a", "sa", "models = [\"*\"]\nexpires = 2026-11-30T00:00:00Z\n") +
                               key("b", "sb", "models = [\"*\"]\n"));
  struct c {
    std::string authorization;
    std::string code;
  };
  for (const auto& [auth, code] : {c{"", "missing_api_key"}, c{"Bearer nope", "invalid_api_key"},
                                   c{"Basic eDp5", "invalid_api_key"},
                                   c{"Bearer sa", "expired_api_key"}}) {
    access_ticket t;
    const auto r = admit(reg, auth, "m", 0, w0, t0, t);
    ASSERT_TRUE(r) << auth;
    EXPECT_EQ(r->status, 401U);
    EXPECT_EQ(r->code, code);
    EXPECT_EQ(header(*r, "www-authenticate"), "Bearer realm=\"nines\"");
    EXPECT_EQ(r->message.find("nope"), std::string::npos) << "no secret in an answer";
    EXPECT_EQ(t.key(), nullptr);
  }
  access_ticket ok;
  EXPECT_FALSE(admit(reg, "Bearer sb", "m", 0, w0, t0, ok));
  EXPECT_EQ(ok.key()->id, "b");
}

TEST(admission, a_model_the_key_does_not_allow_is_a_403) {
  const auto reg = registry_of(key("a", "s", "models = [\"qwen*\"]\n"));
  access_ticket t;
  const auto r = admit(reg, "Bearer s", "gpt-4o", 0, w0, t0, t);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 403U);
  EXPECT_EQ(r->code, "model_not_allowed");
  access_ticket u;
  EXPECT_FALSE(admit(reg, "Bearer s", "qwen2.5-vl", 0, w0, t0, u));
  access_ticket no_model;  // a route without a model (GET /v1/models)
  EXPECT_FALSE(admit(reg, "Bearer s", std::nullopt, 0, w0, t0, no_model));
}

TEST(admission, requests_per_minute_gives_429_with_retry_after_and_ratelimit_headers) {
  const auto reg = registry_of(key("a", "s", "models = [\"*\"]\nrequests_per_minute = 3\n"));
  for (int i = 0; i < 3; ++i) {
    access_ticket t;
    EXPECT_FALSE(admit(reg, "Bearer s", "m", 0, w0, t0 + milliseconds(i * 100), t));
  }
  access_ticket t;
  const auto r = admit(reg, "Bearer s", "m", 0, w0, t0 + milliseconds(1000), t);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 429U);
  EXPECT_EQ(r->code, "rate_limit_exceeded");
  EXPECT_EQ(header(*r, "retry-after"), "59");
  EXPECT_EQ(header(*r, "x-ratelimit-limit-requests"), "3");
  EXPECT_EQ(header(*r, "x-ratelimit-remaining-requests"), "0");
  EXPECT_EQ(header(*r, "x-ratelimit-reset-requests"), "59s");
  access_ticket later;
  EXPECT_FALSE(admit(reg, "Bearer s", "m", 0, w0, t0 + milliseconds(60000), later));
}

TEST(admission, max_concurrent_counts_requests_in_flight_and_frees_their_places) {
  const auto reg = registry_of(key("a", "s", "models = [\"*\"]\nmax_concurrent = 2\n"));
  auto one = std::make_unique<access_ticket>();
  auto two = std::make_unique<access_ticket>();
  EXPECT_FALSE(admit(reg, "Bearer s", "m", 0, w0, t0, *one));
  EXPECT_FALSE(admit(reg, "Bearer s", "m", 0, w0, t0, *two));
  {
    access_ticket three;
    const auto r = admit(reg, "Bearer s", "m", 0, w0, t0, three);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->code, "concurrency_limit_exceeded");
  }
  one.reset();  // it ended
  access_ticket again;
  EXPECT_FALSE(admit(reg, "Bearer s", "m", 0, w0, t0, again));
  EXPECT_EQ(reg->state.at("a")->in_flight.load(), 2U);
}

TEST(admission, tokens_are_reserved_at_admission_and_settled_from_usage) {
  const auto reg = registry_of(key("a", "s", "models = [\"*\"]\ntokens_per_minute = 1000\n"));
  access_ticket big;
  EXPECT_FALSE(admit(reg, "Bearer s", "m", 800, w0, t0, big));
  {
    access_ticket over;
    const auto r = admit(reg, "Bearer s", "m", 300, w0, t0, over);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->type, "tokens");
    EXPECT_EQ(header(*r, "x-ratelimit-remaining-tokens"), "200");
  }
  big.settle_tokens(100, t0 + milliseconds(500));  // it used far less than reserved
  access_ticket fits;
  EXPECT_FALSE(admit(reg, "Bearer s", "m", 300, w0, t0 + milliseconds(600), fits));
  // A refusal for tokens spends no request.
  EXPECT_EQ(reg->state.at("a")->requests.used(t0 + milliseconds(600)), 0U);
}

TEST(admission, a_reload_keeps_each_keys_counts) {
  const auto first = registry_of(key("a", "s", "models = [\"*\"]\nrequests_per_minute = 2\n"));
  for (int i = 0; i < 2; ++i) {
    access_ticket t;
    EXPECT_FALSE(admit(first, "Bearer s", "m", 0, w0, t0, t));
  }
  // The same id, with a new limit: its two requests still count.
  const auto second =
      registry_of(key("a", "s", "models = [\"*\"]\nrequests_per_minute = 3\n"), first.get());
  access_ticket third;
  EXPECT_FALSE(admit(second, "Bearer s", "m", 0, w0, t0, third));
  access_ticket fourth;
  EXPECT_TRUE(admit(second, "Bearer s", "m", 0, w0, t0, fourth));
}

}  // namespace
}  // namespace nines::core
