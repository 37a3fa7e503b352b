#include "core/config/key_values.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(key_values, splits_trims_and_skips_empty_items) {
  std::vector<key_value> items;
  ASSERT_EQ(split_key_values("a=1, b=two,,c=", items), "");
  ASSERT_EQ(items.size(), 3U);
  EXPECT_EQ(items[0].key, "a");
  EXPECT_EQ(items[0].value, "1");
  EXPECT_EQ(items[1].key, "b");
  EXPECT_EQ(items[1].value, "two");
  EXPECT_EQ(items[2].key, "c");
  EXPECT_EQ(items[2].value, "");
  items.clear();
  EXPECT_EQ(split_key_values("a=1,oops", items), "'oops' needs a value (key=value)");
}

TEST(key_values, numbers_must_be_whole) {
  EXPECT_EQ(parse_double("0.25"), 0.25);
  EXPECT_FALSE(parse_double("0.25x"));
  EXPECT_FALSE(parse_double(""));
  EXPECT_EQ(parse_int("-7"), -7);
  EXPECT_FALSE(parse_int("7.5"));
  EXPECT_EQ(parse_count("12"), 12U);
  EXPECT_FALSE(parse_count("-1"));
  EXPECT_FALSE(parse_count("99999999999999999999999"));
}

}  // namespace
}  // namespace nines::core
