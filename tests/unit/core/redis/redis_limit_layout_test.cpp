// The shared limits' answers read strictly (core/redis/redis_limit_layout.hpp): a reply that is
// not the script's, or grants more than was asked, or refuses for a limit nobody asked about, is
// no answer (the caller treats Redis as away), never a grant.

#include "core/redis/redis_limit_layout.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using kind = redis_reply::kind;

redis_reply num(long long v) {
  redis_reply r;
  r.type = kind::integer;
  r.integer = v;
  return r;
}
redis_reply arr(std::vector<long long> values) {
  redis_reply r;
  r.type = kind::array;
  for (auto v : values) {
    r.elements.push_back(num(v));
  }
  return r;
}

limit_take asked() {
  limit_take t;
  t.request_limit = 600;
  t.requests = 1;
  t.extra_requests = 8;
  t.token_limit = 100000;
  t.tokens = 1000;
  t.extra_tokens = 8000;
  return t;
}

TEST(limit_layout, keys_are_hash_tagged_by_the_key_id) {
  const auto k = redis_limit_keys_for("agents");
  EXPECT_EQ(k.requests, "nines:l:{agents}:r");
  EXPECT_EQ(k.tokens, "nines:l:{agents}:t");
}

TEST(limit_layout, a_grant_within_what_was_asked_is_read) {
  const auto g = parse_limit_grant(arr({1, 1764800000, 9, 9000, 500, 90000}), asked());
  ASSERT_TRUE(g);
  EXPECT_TRUE(g->admitted);
  EXPECT_EQ(g->second, 1764800000);
  EXPECT_EQ(g->requests, 9U);
  EXPECT_EQ(g->tokens, 9000U);
  EXPECT_EQ(g->requests_left, 500U);
  const auto refused = parse_limit_grant(arr({0, 1764800000, 2, 1500, 3, 0}), asked());
  ASSERT_TRUE(refused);
  EXPECT_FALSE(refused->admitted);
  EXPECT_TRUE(refused->refused_for_tokens);
  EXPECT_EQ(refused->reset_ms, 1500U);
}

TEST(limit_layout, an_answer_that_does_not_fit_the_question_is_none) {
  const auto t = asked();
  for (const auto& bad : {
           arr({1, 1764800000, 10, 9000, 0, 0}),   // more requests than need + extra
           arr({1, 1764800000, 0, 9000, 0, 0}),    // less than the need
           arr({1, 1764800000, 9, 9001, 0, 0}),    // more tokens than asked
           arr({1, 1764800000, 9, 9000, 601, 0}),  // more left than the limit
           arr({2, 1764800000, 9, 9000, 0, 0}),    // neither admitted nor refused
           arr({0, 1764800000, 3, 1500, 0, 0}),    // refused by a third limit
           arr({0, 1764800000, 1, 0, 0, 0}),       // refused, no reset
           arr({0, 1764800000, 1, 60001, 0, 0}),   // refused for more than a minute
           arr({1, -1, 9, 9000, 0, 0}),            // a second before the epoch
           arr({1, 1764800000, 9, 9000, 0}),       // one short
       }) {
    EXPECT_FALSE(parse_limit_grant(bad, t)) << describe_redis_reply(bad);
  }
  redis_reply error;
  error.type = kind::error;
  error.text = "NOSCRIPT";
  EXPECT_FALSE(parse_limit_grant(error, t));
  // A limit that was not asked about: nothing granted for it, and no refusal by it.
  limit_take only_requests = t;
  only_requests.token_limit = 0;
  only_requests.tokens = 0;
  only_requests.extra_tokens = 0;
  EXPECT_FALSE(parse_limit_grant(arr({1, 1764800000, 1, 5, 0, 0}), only_requests));
  EXPECT_FALSE(parse_limit_grant(arr({0, 1764800000, 2, 5, 0, 0}), only_requests));
  EXPECT_TRUE(parse_limit_grant(arr({1, 1764800000, 1, 0, 599, 0}), only_requests));
}

TEST(limit_layout, the_live_replicas_are_a_count_of_at_least_this_one) {
  EXPECT_EQ(parse_live_replicas(num(3)), 3U);
  EXPECT_FALSE(parse_live_replicas(num(0)));
  EXPECT_FALSE(parse_live_replicas(num(-2)));
  EXPECT_FALSE(parse_live_replicas(arr({3})));
}

}  // namespace
}  // namespace nines::core
