#include "core/json/json_text.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(json_text, a_prefix_never_ends_inside_a_character) {
  const std::string text = "ab\xE6\x97\xA5\xE6\x9C\xAC";  // "ab日本"
  EXPECT_EQ(utf8_prefix(text, 100), text);
  EXPECT_EQ(utf8_prefix(text, 2), "ab");
  EXPECT_EQ(utf8_prefix(text, 3), "ab");
  EXPECT_EQ(utf8_prefix(text, 4), "ab");
  EXPECT_EQ(utf8_prefix(text, 5), "ab\xE6\x97\xA5");
  EXPECT_EQ(utf8_prefix(text, 0), "");
}

TEST(json_text, numbers_json_cannot_write_back_are_found) {
  EXPECT_TRUE(has_non_finite_number(boost::json::parse(R"({"a":[1,{"b":1e999}]})")));
  EXPECT_TRUE(has_non_finite_number(boost::json::parse(R"([-1e999])")));
  EXPECT_FALSE(has_non_finite_number(boost::json::parse(R"({"a":[1.5,{"b":"1e999"}]})")));
}

}  // namespace
}  // namespace nines::core
