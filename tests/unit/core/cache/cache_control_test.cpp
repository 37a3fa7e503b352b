#include "core/cache/cache_control.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

cache_directives of(std::string_view cache_control, std::string_view pragma = {}) {
  cache_directives d;
  read_cache_control(cache_control, d);
  read_pragma(pragma, d);
  return d;
}

TEST(cache_control, no_store_and_no_cache_in_any_case_and_place) {
  EXPECT_TRUE(of("no-store").no_store);
  EXPECT_FALSE(of("no-store").no_cache);
  EXPECT_TRUE(of("No-Cache").no_cache);
  EXPECT_FALSE(of("No-Cache").no_store);
  const auto both = of(" max-stale , NO-STORE,no-cache ");
  EXPECT_TRUE(both.no_store);
  EXPECT_TRUE(both.no_cache);
  EXPECT_TRUE(of("max-age=0").no_cache);
  EXPECT_TRUE(of("max-age=\"00\"").no_cache);
  EXPECT_FALSE(of("max-age=10").no_cache);
  EXPECT_EQ(of("max-age=10").max_age, 10u);
  EXPECT_EQ(of("max-age=60, max-age=\"5\"").max_age, 5u);  // the strictest
  EXPECT_EQ(of("max-age=99999999999999999999999").max_age, 1ull << 31);
  EXPECT_FALSE(of("max-age=-1").max_age);
  EXPECT_FALSE(of("max-age=1e3").max_age);
  EXPECT_TRUE(of("Only-If-Cached").only_if_cached);
  EXPECT_FALSE(of("max-age=").no_cache);
  EXPECT_TRUE(of("", "no-cache").no_cache);
  // Not directives of ours, or not quite ours.
  EXPECT_FALSE(of("no-storeX").no_store);
  EXPECT_FALSE(of("private, public, only-if-cached").no_store);
  EXPECT_FALSE(of("\"no-store\"").no_store);
  EXPECT_FALSE(of("", "no-store").no_store);  // Pragma has no-cache only
}

}  // namespace
}  // namespace nines::core
