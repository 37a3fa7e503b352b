#include "core/http/message_framing.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

request_head request(unsigned version, std::vector<header_field> fields) {
  request_head h;
  h.method = "POST";
  h.target = "/v1/completions";
  h.version = version;
  h.fields = std::move(fields);
  return h;
}

response_head response(unsigned status, std::vector<header_field> fields, unsigned version = 11) {
  response_head h;
  h.status = status;
  h.version = version;
  h.fields = std::move(fields);
  return h;
}

TEST(request_framing, length_chunked_and_none) {
  request_framing f;
  EXPECT_FALSE(read_request_framing(request(11, {{"Host", "a"}, {"Content-Length", "12"}}), 100, f));
  EXPECT_EQ(f.body, body_framing::length);
  EXPECT_EQ(f.length, 12U);
  EXPECT_TRUE(f.keep_alive);
  EXPECT_FALSE(read_request_framing(request(11, {{"Host", "a"}, {"Transfer-Encoding", "Chunked"}}),
                                    100, f));
  EXPECT_EQ(f.body, body_framing::chunked);
  EXPECT_FALSE(read_request_framing(request(11, {{"Host", "a"}, {"Content-Length", "0"}}), 100, f));
  EXPECT_EQ(f.body, body_framing::none);
  EXPECT_FALSE(read_request_framing(request(11, {{"Host", "a"}}), 100, f));
  EXPECT_EQ(f.body, body_framing::none);
}

// Every framing that two parsers could read differently is refused (request smuggling).
TEST(request_framing, refuses_every_ambiguous_framing) {
  struct refused {
    const char* why;
    unsigned version;
    std::vector<header_field> fields;
    unsigned status;
    std::string_view code;
  };
  const refused cases[] = {
      {"TE and CL", 11, {{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Content-Length", "3"}},
       400, "bad_content_length"},
      {"xchunked", 11, {{"Host", "a"}, {"Transfer-Encoding", "xchunked"}}, 400, "bad_transfer_encoding"},
      {"chunked, identity", 11, {{"Host", "a"}, {"Transfer-Encoding", "chunked, identity"}}, 400,
       "bad_transfer_encoding"},
      {"identity", 11, {{"Host", "a"}, {"Transfer-Encoding", "identity"}}, 400, "bad_transfer_encoding"},
      {"gzip, chunked", 11, {{"Host", "a"}, {"Transfer-Encoding", "gzip, chunked"}}, 400,
       "bad_transfer_encoding"},
      {"chunked twice in one field", 11, {{"Host", "a"}, {"Transfer-Encoding", "chunked, chunked"}},
       400, "bad_transfer_encoding"},
      {"chunked in two fields", 11,
       {{"Host", "a"}, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}, 400,
       "bad_transfer_encoding"},
      {"empty TE", 11, {{"Host", "a"}, {"Transfer-Encoding", ""}}, 400, "bad_transfer_encoding"},
      {"quoted chunked", 11, {{"Host", "a"}, {"Transfer-Encoding", "\"chunked\""}}, 400,
       "bad_transfer_encoding"},
      {"TE in HTTP/1.0", 10, {{"Transfer-Encoding", "chunked"}}, 400, "bad_transfer_encoding"},
      {"two CL", 11, {{"Host", "a"}, {"Content-Length", "3"}, {"Content-Length", "3"}}, 400,
       "bad_content_length"},
      {"CL list", 11, {{"Host", "a"}, {"Content-Length", "3, 3"}}, 400, "bad_content_length"},
      {"CL sign", 11, {{"Host", "a"}, {"Content-Length", "+3"}}, 400, "bad_content_length"},
      {"CL hex", 11, {{"Host", "a"}, {"Content-Length", "0x3"}}, 400, "bad_content_length"},
      {"CL 20 digits", 11, {{"Host", "a"}, {"Content-Length", "18446744073709551616"}}, 400,
       "bad_content_length"},
      {"CL over the limit", 11, {{"Host", "a"}, {"Content-Length", "101"}}, 413, "request_too_large"},
      {"no Host in 1.1", 11, {{"Content-Length", "3"}}, 400, "bad_host"},
      {"two Host", 11, {{"Host", "a"}, {"Host", "b"}}, 400, "bad_host"},
      {"two Host in 1.0", 10, {{"Host", "a"}, {"Host", "a"}}, 400, "bad_host"},
      {"Host with a path", 11, {{"Host", "a/b"}}, 400, "bad_host"},
      {"Host with userinfo", 11, {{"Host", "u@a"}}, 400, "bad_host"},
      {"Host with a space", 11, {{"Host", "a b"}}, 400, "bad_host"},
      {"Host with a bad port", 11, {{"Host", "a:8x"}}, 400, "bad_host"},
      {"Upgrade", 11, {{"Host", "a"}, {"Upgrade", "websocket"}, {"Connection", "Upgrade"}}, 400,
       "upgrade_not_supported"},
      {"h2c upgrade", 11, {{"Host", "a"}, {"Upgrade", "h2c"}}, 400, "upgrade_not_supported"},
      {"Connection not tokens", 11, {{"Host", "a"}, {"Connection", "close, \"x\""}}, 400,
       "bad_connection"},
      {"unknown expectation", 11, {{"Host", "a"}, {"Expect", "200-ok"}}, 417, "expectation_failed"},
  };
  for (const auto& c : cases) {
    request_framing f;
    const auto r = read_request_framing(request(c.version, c.fields), 100, f);
    ASSERT_TRUE(r) << c.why;
    EXPECT_EQ(r->status, c.status) << c.why;
    EXPECT_EQ(r->code, c.code) << c.why;
    EXPECT_FALSE(r->message.empty());
  }
}

TEST(request_framing, hosts_that_are_fine) {
  for (const char* host : {"a", "gw.example:8080", "127.0.0.1:1", "[::1]:8080", "[fe80::1]", ""}) {
    request_framing f;
    EXPECT_FALSE(read_request_framing(request(11, {{"Host", host}}), 100, f)) << host;
  }
}

TEST(request_framing, keep_alive_follows_the_version_and_connection) {
  request_framing f;
  read_request_framing(request(11, {{"Host", "a"}, {"Connection", "close"}}), 100, f);
  EXPECT_FALSE(f.keep_alive);
  read_request_framing(request(11, {{"Host", "a"}, {"Connection", "x-foo, Close"}}), 100, f);
  EXPECT_FALSE(f.keep_alive);
  read_request_framing(request(10, {}), 100, f);
  EXPECT_FALSE(f.keep_alive);
  read_request_framing(request(10, {{"Connection", "keep-alive"}}), 100, f);
  EXPECT_TRUE(f.keep_alive);
}

TEST(request_framing, expect_continue_only_with_a_body_and_only_in_1_1) {
  request_framing f;
  read_request_framing(request(11, {{"Host", "a"}, {"Expect", "100-Continue"}, {"Content-Length", "5"}}),
                       100, f);
  EXPECT_TRUE(f.expect_continue);
  read_request_framing(request(11, {{"Host", "a"}, {"Expect", "100-continue"}}), 100, f);
  EXPECT_FALSE(f.expect_continue);
  // HTTP/1.0 expectations are ignored (RFC 9110 §10.1.1), not refused.
  EXPECT_FALSE(read_request_framing(request(10, {{"Expect", "anything"}}), 100, f));
}

TEST(response_framing, no_body_for_1xx_204_304_and_head_whatever_they_declare) {
  response_framing f;
  EXPECT_EQ(read_response_framing(response(103, {{"Link", "</a>"}}), false, f), "");
  EXPECT_TRUE(f.interim);
  EXPECT_EQ(f.body, body_framing::none);
  EXPECT_EQ(read_response_framing(response(304, {{"Content-Length", "10"}}), false, f), "");
  EXPECT_EQ(f.body, body_framing::none);
  EXPECT_TRUE(f.keep_alive);
  EXPECT_EQ(read_response_framing(response(200, {{"Content-Length", "10"}}), true, f), "");
  EXPECT_EQ(f.body, body_framing::none);
  EXPECT_TRUE(f.keep_alive);
  EXPECT_EQ(read_response_framing(response(200, {{"Transfer-Encoding", "chunked"}}), true, f), "");
  EXPECT_EQ(f.body, body_framing::none);
  // A 204 declaring a body may send one anyway: not reused.
  EXPECT_EQ(read_response_framing(response(204, {{"Content-Length", "5"}}), false, f), "");
  EXPECT_EQ(f.body, body_framing::none);
  EXPECT_FALSE(f.keep_alive);
  EXPECT_EQ(read_response_framing(response(204, {{"Content-Length", "0"}}), false, f), "");
  EXPECT_TRUE(f.keep_alive);
}

TEST(response_framing, a_101_that_nobody_asked_for_is_refused) {
  response_framing f;
  EXPECT_NE(read_response_framing(response(101, {{"Upgrade", "h2c"}}), false, f), "");
}

TEST(response_framing, refuses_ambiguous_framings) {
  const std::vector<std::vector<header_field>> cases{
      {{"Transfer-Encoding", "chunked"}, {"Content-Length", "4"}},
      {{"Transfer-Encoding", "gzip, chunked"}},
      {{"Transfer-Encoding", "chunked, identity"}},
      {{"Content-Length", "4"}, {"Content-Length", "4"}},
      {{"Content-Length", "4x"}},
  };
  for (const auto& fields : cases) {
    response_framing f;
    EXPECT_NE(read_response_framing(response(200, fields), false, f), "") << fields[0].value;
  }
  response_framing f;
  EXPECT_NE(read_response_framing(response(200, {{"Transfer-Encoding", "chunked"}}, 10), false, f),
            "");
}

TEST(response_framing, no_length_means_until_close_and_never_reused) {
  response_framing f;
  EXPECT_EQ(read_response_framing(response(200, {}), false, f), "");
  EXPECT_EQ(f.body, body_framing::until_close);
  EXPECT_FALSE(f.keep_alive);
  EXPECT_EQ(read_response_framing(response(200, {{"Connection", "close"}, {"Content-Length", "3"}}),
                                  false, f),
            "");
  EXPECT_EQ(f.body, body_framing::length);
  EXPECT_FALSE(f.keep_alive);
  EXPECT_EQ(read_response_framing(response(200, {{"Content-Length", "3"}}, 10), false, f), "");
  EXPECT_FALSE(f.keep_alive);
}

TEST(connection_options, names_listed_fields_case_insensitively) {
  connection_options o;
  o.add("close, X-Secret");
  o.add("keep-alive");
  EXPECT_TRUE(o.lists("x-secret"));
  EXPECT_TRUE(o.lists("Keep-Alive"));
  EXPECT_FALSE(o.lists("x-other"));
  // As many as a response lists: an upstream cannot hide the 33rd behind a cap.
  std::string many;
  for (int i = 0; i < 40; ++i) {
    many += "x" + std::to_string(i) + ",";
  }
  o.add(many);
  EXPECT_TRUE(o.lists("X39"));
}

TEST(hop_by_hop, the_fixed_names) {
  for (const char* n : {"Connection", "keep-alive", "Proxy-Connection", "TE", "Trailer",
                        "Transfer-Encoding", "Upgrade", "Proxy-Authorization"}) {
    EXPECT_TRUE(is_hop_by_hop_name(n)) << n;
  }
  EXPECT_FALSE(is_hop_by_hop_name("Content-Type"));
  EXPECT_FALSE(is_hop_by_hop_name("Authorization"));
}

}  // namespace
}  // namespace nines::core
