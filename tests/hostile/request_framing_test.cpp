// Hostile clients, request framing: smuggling (CL.TE, TE.CL, TE.TE obfuscations), Content-Length
// and chunk abuse, bare LF, obs-fold, control bytes, Host, versions, limits. Each case asserts what
// the client got (status, error code, whether the connection was closed) and what the upstream
// received (how many requests, and their exact body and headers where one goes through).

#include <gtest/gtest.h>

#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

using forwarded_check = std::function<void(const std::vector<seen_request>&)>;

struct framing_case {
  std::string name;
  std::string request;
  unsigned status;
  std::string code;       // the JSON error code the client must get ("" for a success)
  std::size_t forwarded;  // requests the upstream must receive
  bool closes;            // the gateway closes the connection after its answer
  forwarded_check check = {};
};

std::ostream& operator<<(std::ostream& os, const framing_case& c) { return os << c.name; }

// The upstream got exactly this body, with a Content-Length of its own and no framing of the
// client's.
forwarded_check body_is(std::string body) {
  return [body](const std::vector<seen_request>& seen) {
    ASSERT_EQ(seen.size(), 1U);
    EXPECT_EQ(seen[0].body, body);
    EXPECT_EQ(seen[0].headers.at("content-length"), std::to_string(body.size()));
    EXPECT_FALSE(seen[0].has("transfer-encoding"));
  };
}

const std::string chunked_json = "5\r\n{\"mod\r\n14\r\nel\":\"m\",\"input\":\"x\"}\r\n0\r\n\r\n";
const std::string decoded_json = R"({"model":"m","input":"x"})";

std::string chunked_post(const std::string& te_line, const std::string& wire = chunked_json) {
  return "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\n" + te_line + "\r\n" + wire;
}

std::vector<framing_case> cases() {
  const std::string smuggled = "GET /v1/SMUGGLED HTTP/1.1\r\nHost: gw\r\n\r\n";
  std::string many_headers;
  for (int i = 0; i < 101; ++i) {
    many_headers += "X-H" + std::to_string(i) + ": v\r\n";
  }
  return {
      // Smuggling: every framing two parsers could read differently is refused, and nothing of
      // it reaches the upstream.
      {"cl_te", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n"
                "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
       400, "bad_content_length", 0, true},
      {"te_cl", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
                "Content-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
       400, "bad_content_length", 0, true},
      {"te_xchunked", chunked_post("Transfer-Encoding: xchunked\r\n"), 400, "bad_transfer_encoding", 0, true},
      {"te_chunked_identity", chunked_post("Transfer-Encoding: chunked, identity\r\n"), 400,
       "bad_transfer_encoding", 0, true},
      {"te_identity_chunked", chunked_post("Transfer-Encoding: identity, chunked\r\n"), 400,
       "bad_transfer_encoding", 0, true},
      {"te_gzip", chunked_post("Transfer-Encoding: gzip\r\n"), 400, "bad_transfer_encoding", 0, true},
      {"te_gzip_with_cl", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n"
                          "Content-Length: 5\r\n\r\nhello",
       400, "bad_transfer_encoding", 0, true},
      {"te_twice_in_two_fields",
       chunked_post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400,
       "bad_transfer_encoding", 0, true},
      {"te_chunked_chunked", chunked_post("Transfer-Encoding: chunked, chunked\r\n"), 400,
       "bad_transfer_encoding", 0, true},
      {"te_empty", chunked_post("Transfer-Encoding: \r\n"), 400, "bad_transfer_encoding", 0, true},
      {"te_quoted", chunked_post("Transfer-Encoding: \"chunked\"\r\n"), 400, "bad_transfer_encoding", 0,
       true},
      {"te_in_http_1_0", "POST /v1/embeddings HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" +
                             chunked_json,
       400, "bad_transfer_encoding", 0, true},
      {"te_space_before_colon", chunked_post("Transfer-Encoding : chunked\r\n"), 400,
       "malformed_request", 0, true},
      {"te_tab_before_colon", chunked_post("Transfer-Encoding\t: chunked\r\n"), 400,
       "malformed_request", 0, true},
      {"te_obs_fold", chunked_post("Transfer-Encoding: identity\r\n chunked\r\n"), 400,
       "malformed_request", 0, true},
      {"te_vertical_tab", chunked_post("Transfer-Encoding:\x0b" "chunked\r\n"), 400,
       "malformed_request", 0, true},
      // The same coding written differently but unambiguously is the same coding.
      {"te_upper_case_is_chunked", chunked_post("Transfer-Encoding: CHUNKED\r\n"), 200, "", 1, false,
       body_is(decoded_json)},
      {"te_with_white_space_is_chunked", chunked_post("Transfer-Encoding:  chunked \t\r\n"), 200, "",
       1, false, body_is(decoded_json)},
      // Content-Length.
      {"cl_repeated_same", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: 25\r\n"
                           "Content-Length: 25\r\n\r\n" + decoded_json,
       400, "bad_content_length", 0, true},
      {"cl_repeated_different", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: 25\r\n"
                                "Content-Length: 5\r\n\r\n" + decoded_json,
       400, "bad_content_length", 0, true},
      {"cl_list", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: 25, 25\r\n\r\n" +
                      decoded_json,
       400, "bad_content_length", 0, true},
      {"cl_plus_sign", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: +25\r\n\r\n" +
                           decoded_json,
       400, "bad_content_length", 0, true},
      {"cl_negative", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: -1\r\n\r\n", 400,
       "bad_content_length", 0, true},
      {"cl_inner_space", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: 2 5\r\n\r\n" +
                             decoded_json,
       400, "bad_content_length", 0, true},
      {"cl_hex", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: 0x19\r\n\r\n" +
                     decoded_json,
       400, "bad_content_length", 0, true},
      {"cl_twenty_digits", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\n"
                           "Content-Length: 18446744073709551617\r\n\r\n",
       400, "bad_content_length", 0, true},
      {"cl_over_the_limit", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nContent-Length: 2000000\r\n\r\n",
       413, "request_too_large", 0, true},
      {"cl_short_body_then_smuggled_request_in_the_same_write",
       post("/v1/embeddings", decoded_json) + "GARBAGE\r\n\r\n", 200, "", 1, true,
       body_is(decoded_json)},
      // Chunk sizes, extensions, trailers.
      {"chunk_size_not_hex", chunked_post("Transfer-Encoding: chunked\r\n", "zz\r\nab\r\n0\r\n\r\n"),
       400, "bad_chunked_body", 0, true},
      {"chunk_size_plus", chunked_post("Transfer-Encoding: chunked\r\n", "+5\r\nhello\r\n0\r\n\r\n"),
       400, "bad_chunked_body", 0, true},
      {"chunk_size_17_digits",
       chunked_post("Transfer-Encoding: chunked\r\n", "00000000000000005\r\nhello\r\n0\r\n\r\n"), 400,
       "bad_chunked_body", 0, true},
      {"chunk_size_space_before_extension",
       chunked_post("Transfer-Encoding: chunked\r\n", "5 ;a=b\r\nhello\r\n0\r\n\r\n"), 400,
       "bad_chunked_body", 0, true},
      {"chunk_size_overflow",
       chunked_post("Transfer-Encoding: chunked\r\n", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 413,
       "request_too_large", 0, true},
      {"chunk_data_longer_than_its_size",
       chunked_post("Transfer-Encoding: chunked\r\n", "3\r\nhello\r\n0\r\n\r\n"), 400,
       "bad_chunked_body", 0, true},
      {"chunk_bare_lf", chunked_post("Transfer-Encoding: chunked\r\n", "5\nhello\n0\n\n"), 400,
       "bad_chunked_body", 0, true},
      {"chunk_extension_control_byte",
       chunked_post("Transfer-Encoding: chunked\r\n", "5;a=\x01\r\nhello\r\n0\r\n\r\n"), 400,
       "bad_chunked_body", 0, true},
      {"chunk_extension_unterminated",
       chunked_post("Transfer-Encoding: chunked\r\n", "5;" + std::string(300000, 'e')), 400,
       "bad_chunked_body", 0, true},
      {"chunk_extensions_over_the_bound_across_chunks", [] {
         std::string wire;
         for (int i = 0; i < 40; ++i) {
           wire += "1;ext=" + std::string(120, 'x') + "\r\na\r\n";
         }
         return chunked_post("Transfer-Encoding: chunked\r\n", wire + "0\r\n\r\n");
       }(),
       400, "bad_chunked_body", 0, true},
      {"chunk_extensions_within_the_bound_are_dropped",
       chunked_post("Transfer-Encoding: chunked\r\n",
                    "5;a=1;b=\"two\"\r\n{\"mod\r\n14;c\r\nel\":\"m\",\"input\":\"x\"}\r\n0;d=4\r\n\r\n"),
       200, "", 1, false, body_is(decoded_json)},
      {"trailers_are_dropped_not_promoted",
       chunked_post("Transfer-Encoding: chunked\r\n",
                    "5\r\n{\"mod\r\n14\r\nel\":\"m\",\"input\":\"x\"}\r\n0\r\nX-Injected: 1\r\n"
                    "Authorization: Bearer stolen\r\nHost: evil\r\n\r\n"),
       200, "", 1, false,
       [](const std::vector<seen_request>& seen) {
         body_is(decoded_json)(seen);
         EXPECT_FALSE(seen[0].has("x-injected"));
         EXPECT_FALSE(seen[0].has("authorization"));
         EXPECT_EQ(seen[0].headers.at("host").find("evil"), std::string::npos);
       }},
      {"trailers_over_the_bound",
       chunked_post("Transfer-Encoding: chunked\r\n",
                    "1\r\na\r\n0\r\nX-T: " + std::string(5000, 't') + "\r\n\r\n"),
       400, "bad_chunked_body", 0, true},
      {"trailer_obs_fold",
       chunked_post("Transfer-Encoding: chunked\r\n", "1\r\na\r\n0\r\nX-T: a\r\n folded\r\n\r\n"), 400,
       "bad_chunked_body", 0, true},
      {"chunked_body_over_the_limit", [] {
         std::string wire;
         for (int i = 0; i < 20; ++i) {
           wire += "10000\r\n" + std::string(65536, 'b') + "\r\n";
         }
         return chunked_post("Transfer-Encoding: chunked\r\n", wire + "0\r\n\r\n");
       }(),
       413, "request_too_large", 0, true},
      // Line endings, folding, control bytes, names.
      {"bare_lf_request_line", "GET /v1/models HTTP/1.1\nHost: gw\r\n\r\n", 400, "malformed_request", 0,
       true},
      {"bare_lf_in_fields", "GET /v1/models HTTP/1.1\r\nHost: gw\nX: y\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"bare_lf_end_of_head", "GET /v1/models HTTP/1.1\r\nHost: gw\n\n", 400, "malformed_request", 0,
       true},
      {"bare_cr_in_value", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nX: a\rb\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"nul_in_value", std::string("GET /v1/models HTTP/1.1\r\nHost: gw\r\nX: a") + '\0' + "b\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"del_in_value", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nX: a\x7f\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"obs_fold", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n X-B: 2\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"field_without_colon", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nJust text\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"field_name_with_space", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nX Y: z\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"empty_field_name", "GET /v1/models HTTP/1.1\r\nHost: gw\r\n: z\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"non_ascii_target", "GET /v1/mod\xc3\xa9ls HTTP/1.1\r\nHost: gw\r\n\r\n", 400,
       "malformed_request", 0, true},
      // Host.
      {"no_host_in_http_1_1", "GET /v1/models HTTP/1.1\r\n\r\n", 400, "bad_host", 0, true},
      {"two_hosts", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nHost: evil\r\n\r\n", 400, "bad_host", 0,
       true},
      {"host_with_userinfo", "GET /v1/models HTTP/1.1\r\nHost: user@gw\r\n\r\n", 400, "bad_host", 0,
       true},
      {"host_with_path", "GET /v1/models HTTP/1.1\r\nHost: gw/x\r\n\r\n", 400, "bad_host", 0, true},
      {"host_with_space", "GET /v1/models HTTP/1.1\r\nHost: gw evil\r\n\r\n", 400, "bad_host", 0, true},
      {"http_1_0_without_host_is_fine", "GET /v1/models HTTP/1.0\r\n\r\n", 200, "", 1, true},
      // Start line and versions.
      {"extra_space_in_request_line", "GET  /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"trailing_space_in_request_line", "GET /v1/models HTTP/1.1 \r\nHost: gw\r\n\r\n", 400,
       "malformed_request", 0, true},
      {"http_2_0", "GET /v1/models HTTP/2.0\r\nHost: gw\r\n\r\n", 505, "http_version_not_supported", 0,
       true},
      {"http_1_2", "GET /v1/models HTTP/1.2\r\nHost: gw\r\n\r\n", 505, "http_version_not_supported", 0,
       true},
      {"version_garbage", "GET /v1/models HTTP/1.1x\r\nHost: gw\r\n\r\n", 400, "malformed_request", 0,
       true},
      {"lower_case_method", "get /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", 405, "method_not_allowed", 0,
       false},
      {"leading_empty_line_is_ignored", "\r\nGET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", 200, "", 1,
       false},
      {"nine_leading_empty_lines",
       "\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n", 400,
       "malformed_request", 0, true},
      // Limits and expectations.
      {"more_than_100_fields", "GET /v1/models HTTP/1.1\r\nHost: gw\r\n" + many_headers + "\r\n", 431,
       "too_many_headers", 0, true},
      {"head_over_64_kib", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nX: " + std::string(70000, 'a') +
                               "\r\n\r\n",
       431, "request_header_too_large", 0, true},
      {"unknown_expectation", "POST /v1/embeddings HTTP/1.1\r\nHost: gw\r\nExpect: 200-ok\r\n"
                              "Content-Length: 25\r\n\r\n" + decoded_json,
       417, "expectation_failed", 0, true},
      {"upgrade_websocket", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\n"
                            "Upgrade: websocket\r\n\r\n",
       400, "upgrade_not_supported", 0, true},
      {"upgrade_h2c", "GET /v1/models HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                      "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
       400, "upgrade_not_supported", 0, true},
      {"connection_option_not_a_token", "GET /v1/models HTTP/1.1\r\nHost: gw\r\n"
                                        "Connection: close, \"quoted\"\r\n\r\n",
       400, "bad_connection", 0, true},
  };
}

class request_framing : public ::testing::TestWithParam<framing_case> {
 protected:
  static void SetUpTestSuite() {
    env_ = new hostile_env("[limits]\nmax_body_bytes = 1048576\n");
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  static hostile_env* env_;
};
hostile_env* request_framing::env_ = nullptr;

TEST_P(request_framing, answers_and_forwards_exactly_as_expected) {
  const auto& c = GetParam();
  const auto before = env_->upstream.request_count();
  raw_client client(env_->port());
  client.send(c.request);
  const auto r = client.read_response();
  ASSERT_TRUE(r) << "no answer";
  EXPECT_EQ(r->status, c.status) << r->head << r->body;
  EXPECT_EQ(error_code_of(r->body), c.code) << r->body;
  if (c.status >= 400) {
    EXPECT_EQ(r->header("content-type"), "application/json");
  }
  if (c.closes) {
    EXPECT_TRUE(client.wait_closed()) << "the connection must be closed: its framing is in doubt";
  } else {
    // Still in sync: the next request on the same connection gets its own answer.
    client.send(get("/v1/models", "X-Next: 1\r\n"));
    const auto next = client.read_response();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->status, 200U);
    EXPECT_EQ(next->body, R"({"ok":"/v1/models"})");
  }
  const auto all = env_->upstream.requests();
  std::vector<seen_request> seen(all.begin() + static_cast<std::ptrdiff_t>(before), all.end());
  if (!c.closes) {
    ASSERT_FALSE(seen.empty());
    seen.pop_back();  // the follow-up
  }
  EXPECT_EQ(seen.size(), c.forwarded);
  for (const auto& s : seen) {
    EXPECT_EQ(s.target.find("SMUGGLED"), std::string::npos);
  }
  if (c.check) {
    c.check(seen);
  }
}

INSTANTIATE_TEST_SUITE_P(hostile, request_framing, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace nines::hostile
