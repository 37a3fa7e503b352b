#include "core/cache/answer_cache.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

// Request n, and its lookup key (any number: the cache compares the request itself).
answer_request request_of(unsigned char n) {
  return {"POST", "/v1/chat/completions", "agent", "", "{\"n\":" + std::to_string(n) + "}"};
}
std::uint64_t key_of(unsigned char n) {
  return n;
}

cached_answer answer_of(std::string body) {
  cached_answer a;
  a.fields = {{"content-type", "application/json"}};
  a.body = std::move(body);
  return a;
}

TEST(answer_cache, finds_what_was_stored_and_nothing_else) {
  answer_cache cache({1u << 20, 1u << 20, 60s});
  const auto t0 = clock_type::time_point{} + 1h;
  EXPECT_FALSE(cache.lookup(key_of(1), request_of(1).view(), t0));
  EXPECT_EQ(cache.store(key_of(1), request_of(1), answer_of("one"), t0, 0),
            answer_cache::store_result::stored);
  const auto hit = cache.lookup(key_of(1), request_of(1).view(), t0 + 2500ms);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->answer->body, "one");
  EXPECT_EQ(hit->age, 2500ms);
  EXPECT_FALSE(cache.lookup(key_of(2), request_of(2).view(), t0));
  // The same lookup key with another request (a collision of keys) is not it.
  EXPECT_FALSE(cache.lookup(key_of(1), request_of(2).view(), t0));
  // Nor the same request under another key.
  EXPECT_FALSE(cache.lookup(key_of(2), request_of(1).view(), t0));
}

TEST(answer_cache, requests_that_share_a_lookup_key_are_kept_and_found_apart) {
  answer_cache cache({1u << 22, 1u << 20, 60s});
  const auto t0 = clock_type::time_point{} + 1h;
  // Bodies of one length ({"n":10} .. ): one lookup key, per_key + 1 of them.
  const unsigned first = 10;
  const unsigned last = first + static_cast<unsigned>(answer_cache::per_key);
  for (unsigned n = first; n <= last; ++n) {
    cache.store(7, request_of(static_cast<unsigned char>(n)), answer_of("answer " + std::to_string(n)),
                t0 + std::chrono::milliseconds(n), 0);
  }
  // At most per_key under one key: the oldest went.
  EXPECT_FALSE(cache.lookup(7, request_of(first).view(), t0 + 1s));
  for (unsigned n = first + 1; n <= last; ++n) {
    const auto hit = cache.lookup(7, request_of(static_cast<unsigned char>(n)).view(), t0 + 1s);
    ASSERT_TRUE(hit) << n;
    EXPECT_EQ(hit->answer->body, "answer " + std::to_string(n));
  }
  EXPECT_EQ(cache.read_stats().entries, answer_cache::per_key);
  const auto kept = cache.candidates(7, request_of(first).body.size(), 1000);
  EXPECT_EQ(kept.size(), answer_cache::per_key);
  // A candidate whose body matched already is found by its other parts only.
  for (const auto& c : kept) {
    auto view = c->view();
    view.body = std::string_view("{\"n\":??}");  // same length, other bytes: trusted as matched
    ASSERT_TRUE(cache.lookup(7, view, t0 + 1s, c.get()));
    view.target = "/v1/completions";  // but not another target
    EXPECT_FALSE(cache.lookup(7, view, t0 + 1s, c.get()));
  }
}

TEST(answer_cache, an_answer_expires_after_the_ttl_from_its_store) {
  answer_cache cache({1u << 20, 1u << 20, 10s});
  const auto t0 = clock_type::time_point{} + 1h;
  cache.store(key_of(1), request_of(1), answer_of("one"), t0, 0);
  EXPECT_TRUE(
      cache.lookup(key_of(1), request_of(1).view(), t0 + 9999ms));  // a hit does not extend it
  EXPECT_FALSE(cache.lookup(key_of(1), request_of(1).view(), t0 + 10s));
  EXPECT_EQ(cache.read_stats().expired, 1u);
  EXPECT_EQ(cache.read_stats().entries, 0u);
  EXPECT_EQ(cache.read_stats().bytes, 0u);
}

TEST(answer_cache, sweep_frees_expired_answers_nobody_asks_for) {
  answer_cache cache({1u << 20, 1u << 20, 10s});
  const auto t0 = clock_type::time_point{} + 1h;
  cache.store(key_of(1), request_of(1), answer_of("old"), t0, 0);
  cache.store(key_of(2), request_of(2), answer_of("new"), t0 + 5s, 0);
  cache.sweep(t0 + 11s);
  const auto s = cache.read_stats();
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.expired, 1u);
  EXPECT_TRUE(cache.lookup(key_of(2), request_of(2).view(), t0 + 11s));
}

TEST(answer_cache, bounded_in_bytes_dropping_the_least_recently_used) {
  const std::string body(1000, 'x');
  const std::size_t cost = answer_of(body).cost() + request_of(1).size();
  answer_cache cache({3 * cost, cost, 60s});
  const auto t0 = clock_type::time_point{} + 1h;
  cache.store(key_of(1), request_of(1), answer_of(body), t0, 0);
  cache.store(key_of(2), request_of(2), answer_of(body), t0, 0);
  cache.store(key_of(3), request_of(3), answer_of(body), t0, 0);
  ASSERT_TRUE(cache.lookup(key_of(1), request_of(1).view(),
                           t0));  // 1 is now the most recently used; 2 the least
  cache.store(key_of(4), request_of(4), answer_of(body), t0, 0);
  EXPECT_TRUE(cache.lookup(key_of(1), request_of(1).view(), t0));
  EXPECT_FALSE(cache.lookup(key_of(2), request_of(2).view(), t0));
  EXPECT_TRUE(cache.lookup(key_of(3), request_of(3).view(), t0));
  EXPECT_TRUE(cache.lookup(key_of(4), request_of(4).view(), t0));
  const auto s = cache.read_stats();
  EXPECT_EQ(s.evicted, 1u);
  EXPECT_EQ(s.entries, 3u);
  EXPECT_LE(s.bytes, 3 * cost);
}

TEST(answer_cache, an_answer_above_the_entry_bound_is_not_kept) {
  answer_cache cache({1u << 20, 4096, 60s});
  const auto t0 = clock_type::time_point{} + 1h;
  EXPECT_EQ(cache.store(key_of(1), request_of(1), answer_of(std::string(5000, 'x')), t0, 0),
            answer_cache::store_result::too_large);
  EXPECT_FALSE(cache.lookup(key_of(1), request_of(1).view(), t0));
  EXPECT_EQ(cache.read_stats().too_large, 1u);
  EXPECT_EQ(cache.read_stats().bytes, 0u);
}

TEST(answer_cache, storing_again_replaces_and_counts_bytes_once) {
  answer_cache cache({1u << 20, 1u << 20, 60s});
  const auto t0 = clock_type::time_point{} + 1h;
  cache.store(key_of(1), request_of(1), answer_of("first"), t0, 0);
  cache.store(key_of(1), request_of(1), answer_of("second"), t0 + 1s, 0);
  const auto hit = cache.lookup(key_of(1), request_of(1).view(), t0 + 1s);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->answer->body, "second");
  EXPECT_EQ(hit->age, 0ms);
  const auto s = cache.read_stats();
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.bytes, answer_of("second").cost() + request_of(1).size());
}

TEST(answer_cache, a_hit_outlives_its_eviction) {
  // The answer being replayed stays valid while the cache drops it.
  answer_cache cache({answer_of("a").cost() + request_of(1).size(), 1u << 20, 60s});
  const auto t0 = clock_type::time_point{} + 1h;
  cache.store(key_of(1), request_of(1), answer_of("a"), t0, 0);
  const auto hit = cache.lookup(key_of(1), request_of(1).view(), t0);
  ASSERT_TRUE(hit);
  cache.store(key_of(2), request_of(2), answer_of("b"), t0, 0);
  EXPECT_FALSE(cache.lookup(key_of(1), request_of(1).view(), t0));
  EXPECT_EQ(hit->answer->body, "a");
}

}  // namespace
}  // namespace nines::core

namespace nines::core {
namespace {

TEST(answer_cache, only_answers_at_temperature_zero_given_once_are_repeatable) {
  EXPECT_TRUE(answer_is_repeatable(probe_json(R"({"model":"m","temperature":0})").facts));
  EXPECT_TRUE(answer_is_repeatable(probe_json(R"({"temperature":0.0,"seed":1})").facts));
  EXPECT_FALSE(answer_is_repeatable(probe_json(R"({"model":"m"})").facts));
  EXPECT_FALSE(answer_is_repeatable(probe_json(R"({"temperature":0.2})").facts));
  EXPECT_FALSE(answer_is_repeatable(probe_json(R"({"temperature":"0"})").facts));
  EXPECT_FALSE(answer_is_repeatable(probe_json(R"({"temperature":0,"temperature":0})").facts));
  EXPECT_FALSE(answer_is_repeatable(probe_json(R"([{"temperature":0}])").facts));
}

}  // namespace
}  // namespace nines::core

namespace nines::core {
namespace {

TEST(answer_cache, an_answer_generated_before_a_clear_is_not_kept) {
  answer_cache cache({1u << 20, 1u << 20, std::chrono::seconds(60)});
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  const auto epoch = cache.epoch();
  cache.clear();  // a reload while the answer was generated
  answer_request r{"POST", "/v1/completions", "", "", "{}"};
  EXPECT_EQ(cache.store(1, r, cached_answer{}, t0, epoch), answer_cache::store_result::stale);
  EXPECT_FALSE(cache.lookup(1, r.view(), t0));
  EXPECT_EQ(cache.store(1, r, cached_answer{}, t0, cache.epoch()),
            answer_cache::store_result::stored);
}

TEST(answer_cache, clear_drops_everything_and_its_bytes) {
  answer_cache cache({1u << 20, 1u << 20, std::chrono::seconds(60)});
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  answer_request r{"POST", "/v1/completions", "", "", "{}"};
  cached_answer a;
  a.body = "x";
  cache.store(1, r, a, t0, 0);
  r.body = "{ }";
  cache.store(1, r, a, t0, 0);
  EXPECT_EQ(cache.read_stats().entries, 2u);
  cache.clear();
  EXPECT_EQ(cache.read_stats().entries, 0u);
  EXPECT_EQ(cache.read_stats().cleared, 2u);
  EXPECT_EQ(cache.read_stats().bytes, 0u);
  EXPECT_FALSE(cache.lookup(1, r.view(), t0));
  cache.sweep(t0 + std::chrono::hours(1));  // nothing left to sweep, nothing dangling
  EXPECT_EQ(cache.read_stats().expired, 0u);
}

}  // namespace
}  // namespace nines::core
