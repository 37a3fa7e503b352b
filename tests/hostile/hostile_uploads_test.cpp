// Hostile clients of /v1/uploads (tus): an append's body read exactly to its framing (a request
// pipelined behind it is its own), chunked framing that breaks mid-body, bodies that would pass the
// upload's length, and references that try to name something else. Nothing of it reaches the
// upstream.

#include <gtest/gtest.h>

#include <fstream>

#include "core/access/secret_digest.hpp"
#include "hostile_env.hpp"

namespace nines::hostile {
namespace {

const std::string secret = "secret-hostile-uploads-01";

std::string uploads_toml() {
  const auto keys = test::temp_path(".toml");
  std::ofstream(keys) << "[[keys]]\nid = \"h\"\nhash = \""
                      << core::format_secret_digest(core::sha256_of(secret))
                      << "\"\nmodels = [\"*\"]\n";
  return "[auth]\nkeys_file = \"" + keys + "\"\n[uploads]\ndir = \"" + test::temp_path(".uploads") +
         "\"\n";
}

class hostile_uploads : public ::testing::Test {
 protected:
  hostile_uploads() : env(uploads_toml()) {}

  std::string create(std::size_t length) {
    const auto r = test::http_call(env.port(), "POST", "/v1/uploads", "",
                                   {{"Authorization", "Bearer " + secret},
                                    {"Tus-Resumable", "1.0.0"},
                                    {"Upload-Length", std::to_string(length)}});
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.headers.count("location") ? r.headers.at("location") : "";
  }
  std::string offset(const std::string& location) {
    const auto r =
        test::http_call(env.port(), "HEAD", location, "",
                        {{"Authorization", "Bearer " + secret}, {"Tus-Resumable", "1.0.0"}});
    return r.headers.count("upload-offset") ? r.headers.at("upload-offset") : "(none)";
  }
  static std::string patch_head(const std::string& location, const std::string& framing) {
    return "PATCH " + location + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + secret +
           "\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: "
           "application/offset+octet-stream\r\n" +
           framing + "\r\n";
  }
  hostile_env env;
};

TEST_F(hostile_uploads, an_append_reads_its_body_exactly_and_a_pipelined_request_is_its_own) {
  const auto location = create(10);
  const auto answers = test::raw_exchange(
      env.port(), patch_head(location, "Content-Length: 10\r\n") + "0123456789" +
                      "GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n");
  EXPECT_TRUE(answers.starts_with("HTTP/1.1 204")) << answers;
  EXPECT_NE(answers.find("Upload-Offset: 10\r\n"), std::string::npos);
  EXPECT_NE(answers.find("\r\n\r\nHTTP/1.1 200"), std::string::npos) << answers;
  EXPECT_EQ(offset(location), "10");
  EXPECT_EQ(env.upstream.request_count(), 0u);
}

TEST_F(hostile_uploads, chunked_framing_that_breaks_keeps_what_came_before_and_closes) {
  const auto location = create(20);
  const auto answer =
      test::raw_exchange(env.port(), patch_head(location, "Transfer-Encoding: chunked\r\n") +
                                         "5\r\nabcde\r\nZZ\r\nfghij\r\n0\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << answer;
  EXPECT_NE(answer.find("bad_chunked_body"), std::string::npos);
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  EXPECT_EQ(offset(location), "5");  // tus: what arrived before the break is kept
  EXPECT_EQ(env.upstream.request_count(), 0u);
}

TEST_F(hostile_uploads, a_body_that_would_pass_the_upload_length_stores_nothing_of_the_excess) {
  const auto location = create(10);
  // Declared too long: refused before a byte is read.
  const auto declared = test::raw_exchange(
      env.port(), patch_head(location, "Content-Length: 1000\r\n") + std::string(1000, 'x'));
  EXPECT_TRUE(declared.starts_with("HTTP/1.1 413")) << declared;
  EXPECT_NE(declared.find("upload_too_large"), std::string::npos);
  EXPECT_EQ(offset(location), "0");
  // Chunked, so nothing is declared: the piece that passes the length is refused.
  const auto chunked =
      test::raw_exchange(env.port(), patch_head(location, "Transfer-Encoding: chunked\r\n") +
                                         "14\r\n" + std::string(20, 'y') + "\r\n0\r\n\r\n");
  EXPECT_TRUE(chunked.starts_with("HTTP/1.1 413")) << chunked;
  EXPECT_EQ(offset(location), "0");
  EXPECT_EQ(env.upstream.request_count(), 0u);
}

TEST_F(hostile_uploads, a_refused_append_is_answered_before_the_close_with_its_body_unread) {
  const auto location = create(4u << 20);
  // At the wrong offset, with 3 MB behind the head that the gateway will not read: the client
  // still reads the 409 (a lingering close, not a reset over its unread bytes).
  const auto bytes = "PATCH " + location + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " +
                     secret +
                     "\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 5\r\nContent-Type: "
                     "application/offset+octet-stream\r\nContent-Length: 3145728\r\n\r\n" +
                     std::string(3u << 20, 'z');
  const auto answer = test::raw_exchange(env.port(), bytes);
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 409")) << answer.substr(0, 200);
  EXPECT_NE(answer.find("upload_offset_mismatch"), std::string::npos);
  // Asked to say whether to go on, it says no without a 100 Continue first.
  const auto waiting = test::raw_exchange(
      env.port(), "PATCH " + location + " HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + secret +
                      "\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 5\r\nContent-Type: "
                      "application/offset+octet-stream\r\nExpect: 100-continue\r\n"
                      "Content-Length: 100\r\n\r\n");
  EXPECT_TRUE(waiting.starts_with("HTTP/1.1 409")) << waiting;
  EXPECT_EQ(waiting.find("100 Continue"), std::string::npos);
  EXPECT_EQ(offset(location), "0");
}

TEST_F(hostile_uploads, a_reference_names_an_upload_of_this_gateway_or_nothing) {
  const auto location = create(5);
  const std::vector<std::string> references{std::string("/v1/uploads/../../etc/passwd"),
                                            location + "/..", location + "?x", "file:///etc/passwd",
                                            "//evil.example" + location};
  for (const auto& reference : references) {
    const auto answer = test::raw_exchange(
        env.port(), "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " +
                        secret + "\r\nNines-Upload: " + reference +
                        "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 400")) << reference << ": " << answer;
  }
  EXPECT_EQ(env.upstream.request_count(), 0u);
}

}  // namespace
}  // namespace nines::hostile
