#include "core/http/request_target.hpp"

#include <gtest/gtest.h>

#include "core/http/api_routes.hpp"

namespace nines::core {
namespace {

std::string canonical(std::string_view target) {
  canonical_target t;
  const auto why = check_request_target(target, t);
  EXPECT_FALSE(why) << target << ": " << why.value_or("");
  return t.text();
}

TEST(request_target, canonical_form_decodes_what_need_not_be_encoded_and_encodes_the_rest) {
  EXPECT_EQ(canonical("/v1/chat/completions"), "/v1/chat/completions");
  EXPECT_EQ(canonical("/v1/%63hat/completions"), "/v1/chat/completions");
  EXPECT_EQ(canonical("/v1/models/Qwen%2dVL%20x"), "/v1/models/Qwen-VL%20x");
  EXPECT_EQ(canonical("/v1/models/caf%c3%a9"), "/v1/models/caf%C3%A9");
  EXPECT_EQ(canonical("/v1/models?limit=5&a=%2F"), "/v1/models?limit=5&a=%2F");
  EXPECT_EQ(canonical("/"), "/");
  EXPECT_EQ(canonical("/v1/models/"), "/v1/models/");
  EXPECT_EQ(canonical("/v1/a:b@c!$&'()*+,;="), "/v1/a:b@c!$&'()*+,;=");
}

TEST(request_target, refuses_every_way_out_of_the_path_it_claims) {
  for (const char* target : {
           "/v1/../metrics", "/v1/%2e%2e/sleep", "/v1/%2E%2E/sleep", "/v1/./../start_profile",
           "/v1/..%2fcollective_rpc", "/v1/.%2e/x", "/v1/%2e/x", "/v1/..", "/v1/.", "/..",
           "/v1/models%2fx", "/v1/models%2Fx", "/v1/models%5cx", "/v1//chat/completions",
           "//v1/models", "/v1/a\\b", "/v1/a%00b", "/v1/a%0d%0aX:%20y", "/v1/a%7f", "/v1/a%zz",
           "/v1/a%2", "/v1/a%", "/v1/a\"b", "/v1/a<b>", "/v1/a{b}", "/v1/a|b", "/v1/a^b",
           "/v1/a`b", "/v1/models#frag", "http://evil/v1/models", "v1/models", "*",
           "/v1/models/..;/..;/metrics", "/v1/..;x/y", "/v1/.;/x", "/v1/models/..%3B/x",
           "/v1/%2e%2e;/x",
           "evil:80", "/v1/models?a=%zz", "/v1/models?a=<", "/v1/models?a=\\",
       }) {
    canonical_target t;
    EXPECT_TRUE(check_request_target(target, t)) << target;
  }
}

TEST(api_routes, the_builtin_openai_routes) {
  const route_table table;
  const auto found = [&](std::string_view m, std::string_view p) {
    return table.match(m, p).kind == route_match_kind::found;
  };
  EXPECT_EQ(table.match("POST", "/v1/chat/completions").route, api_route::chat_completions);
  EXPECT_EQ(table.match("POST", "/v1/completions").route, api_route::completions);
  EXPECT_EQ(table.match("POST", "/v1/embeddings").route, api_route::embeddings);
  EXPECT_EQ(table.match("POST", "/v1/responses").route, api_route::responses);
  EXPECT_EQ(table.match("GET", "/v1/models").route, api_route::models);
  EXPECT_EQ(table.match("HEAD", "/v1/models").route, api_route::models);
  EXPECT_EQ(table.match("GET", "/v1/models/Qwen/Qwen2.5-VL-7B").route, api_route::model);
  EXPECT_FALSE(found("GET", "/v1/models/"));
  EXPECT_FALSE(found("POST", "/v1/load_lora_adapter"));
  EXPECT_FALSE(found("POST", "/v1/chat/completions/x"));
  EXPECT_FALSE(found("POST", "/v1"));
  EXPECT_FALSE(found("GET", "/metrics"));
  EXPECT_FALSE(found("POST", "/tokenize"));
}

TEST(api_routes, a_known_path_with_another_method_says_which_are_allowed) {
  const route_table table;
  const auto m = table.match("GET", "/v1/chat/completions");
  EXPECT_EQ(m.kind, route_match_kind::wrong_method);
  EXPECT_EQ(m.allow, "POST");
  const auto models = table.match("DELETE", "/v1/models");
  EXPECT_EQ(models.kind, route_match_kind::wrong_method);
  EXPECT_EQ(models.allow, "GET, HEAD");
}

TEST(api_routes, passthrough_patterns_add_routes_under_v1_only) {
  route_pattern tokenize;
  route_pattern files;
  ASSERT_FALSE(parse_route_pattern("POST /v1/tokenize", tokenize));
  ASSERT_FALSE(parse_route_pattern("GET /v1/files/*/content", files));
  const route_table table({tokenize, files});
  EXPECT_EQ(table.match("POST", "/v1/tokenize").route, api_route::passthrough);
  EXPECT_EQ(table.match("GET", "/v1/files/f-1/content").kind, route_match_kind::found);
  EXPECT_EQ(table.match("GET", "/v1/files/a/b/content").kind, route_match_kind::not_found);
  EXPECT_EQ(table.match("GET", "/v1/files//content").kind, route_match_kind::not_found);
  route_pattern p;
  for (const char* bad : {"POST /tokenize", "POST /v1/../metrics", "TRACE /v1/x", "POST",
                          "POST v1/x", "GET /v1/**/x", "GET /v1/x?y", "GET /v1/x/",
                          "CONNECT /v1/x", "post /v1/x"}) {
    EXPECT_TRUE(parse_route_pattern(bad, p)) << bad;
  }
}

TEST(api_routes, an_encoded_path_matches_as_its_decoded_form) {
  const route_table table;
  canonical_target t;
  ASSERT_FALSE(check_request_target("/v1/%63hat/%63ompletions", t));
  EXPECT_EQ(table.match("POST", t.path).route, api_route::chat_completions);
}

}  // namespace
}  // namespace nines::core
