// Which SNI certificate a client's server name selects (tls_server_identity's callback).
#include <gtest/gtest.h>

#include "net/tls_server_identity.hpp"

namespace nines::net {
namespace {

TEST(tls_server_name, exact_names_win_then_a_wildcard_covers_exactly_one_label) {
  const std::vector<std::string> names{"*.example.com", "api.example.com", "other.test"};
  EXPECT_EQ(match_server_name(names, "api.example.com"), 1);
  EXPECT_EQ(match_server_name(names, "API.Example.COM"), 1);   // case does not matter
  EXPECT_EQ(match_server_name(names, "api.example.com."), 1);  // nor a trailing dot
  EXPECT_EQ(match_server_name(names, "web.example.com"), 0);
  EXPECT_EQ(match_server_name(names, "a.b.example.com"), -1);  // two labels
  EXPECT_EQ(match_server_name(names, "example.com"), -1);      // none
  EXPECT_EQ(match_server_name(names, ".example.com"), -1);     // an empty label
  EXPECT_EQ(match_server_name(names, "other.test"), 2);
  EXPECT_EQ(match_server_name(names, "unknown.test"), -1);
  EXPECT_EQ(match_server_name(names, ""), -1);
}

}  // namespace
}  // namespace nines::net
