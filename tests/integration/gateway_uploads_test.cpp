// tus 1.0 at /v1/uploads on the real binary: the protocol's answers, ownership by client key, the
// takeover of an append a dead connection left open, expiry, and a request whose body is a
// finished upload (Nines-Upload). The edge's side (a body cut at 10/50/90% and resumed through
// another uplink) is edge_uploads_test.cpp; tus-js-client speaks to it in tests/e2e.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fstream>

#include "core/access/secret_digest.hpp"
#include "core/codec/base64.hpp"
#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;
using headers = std::map<std::string, std::string>;

const std::string secret_a = "secret-upload-a-0123";
const std::string secret_b = "secret-upload-b-0123";

std::string keys_file() {
  const auto path = temp_path(".toml");
  std::ofstream(path) << "[[keys]]\nid = \"agent-a\"\nhash = \""
                      << core::format_secret_digest(core::sha256_of(secret_a))
                      << "\"\nmodels = [\"*\"]\n[[keys]]\nid = \"agent-b\"\nhash = \""
                      << core::format_secret_digest(core::sha256_of(secret_b))
                      << "\"\nmodels = [\"*\"]\n";
  return path;
}

std::string uploads_toml(const std::string& keys, const std::string& mock_url,
                         const std::string& extra = {}) {
  return "[auth]\nkeys_file = \"" + keys + "\"\n[uploads]\ndir = \"" + temp_path(".uploads") +
         "\"\nmax_upload_bytes = 4194304\n" + extra + upstreams_toml({mock_url});
}

std::string error_code(const response& r) {
  try {
    return std::string(json::parse(r.body).at("error").at("code").as_string());
  } catch (const std::exception&) {
    return "(no JSON error: " + r.body + ")";
  }
}

std::string b64_sha256(const std::string& body) {
  const auto d = core::sha256_of(body);
  return core::base64_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// A body as an agent sends it: a chat request carrying a large "screenshot".
std::string screenshot_body(std::size_t bytes, bool stream, char fill = 'Q') {
  return chat_body("tap the button: data:image/png;base64," + std::string(bytes, fill), stream);
}

class gateway_uploads : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mock_ = new server(start_mock());
    keys_ = new std::string(keys_file());
    gw_ = new server(start_gateway(uploads_toml(*keys_, mock_->url())));
  }
  static void TearDownTestSuite() {
    delete gw_;
    delete mock_;
    delete keys_;
  }
  static response tus(const std::string& method, const std::string& target, headers h = {},
                      const std::string& body = {}, const std::string& secret = secret_a) {
    h.emplace("Tus-Resumable", "1.0.0");
    if (!secret.empty()) {
      h.emplace("Authorization", "Bearer " + secret);
    }
    return http_call(gw_->port, method, target, body, h);
  }
  static std::string create(std::size_t length, headers h = {}) {
    h["Upload-Length"] = std::to_string(length);
    const auto r = tus("POST", "/v1/uploads", h);
    EXPECT_EQ(r.status, 201u) << r.body;
    return r.headers.count("location") ? r.headers.at("location") : "";
  }
  static response append(const std::string& location, std::size_t offset, const std::string& bytes,
                         headers h = {}) {
    h.emplace("Upload-Offset", std::to_string(offset));
    h.emplace("Content-Type", "application/offset+octet-stream");
    return tus("PATCH", location, h, bytes);
  }
  static response ask_with_upload(const std::string& location,
                                  const std::string& secret = secret_a) {
    return http_call(gw_->port, "POST", "/v1/chat/completions", "",
                     {{"Authorization", "Bearer " + secret},
                      {"Nines-Upload", location},
                      {"Content-Type", "application/json"},
                      {"x-mock-digest", "sha256"}});
  }
  static server* mock_;
  static server* gw_;
  static std::string* keys_;
};
server* gateway_uploads::mock_ = nullptr;
server* gateway_uploads::gw_ = nullptr;
std::string* gateway_uploads::keys_ = nullptr;

TEST_F(gateway_uploads, options_say_what_the_server_speaks_without_a_key) {
  const auto r = http_call(gw_->port, "OPTIONS", "/v1/uploads");
  EXPECT_EQ(r.status, 204u);
  EXPECT_EQ(r.headers.at("tus-resumable"), "1.0.0");
  EXPECT_EQ(r.headers.at("tus-version"), "1.0.0");
  EXPECT_EQ(r.headers.at("tus-extension"),
            "creation,creation-with-upload,expiration,termination,checksum");
  EXPECT_EQ(r.headers.at("tus-max-size"), "4194304");
  EXPECT_EQ(r.headers.at("tus-checksum-algorithm"), "sha256");
  // Counted as the gateway's own route, outside the availability SLI's model routes.
  EXPECT_TRUE(eventually([&] {
    return metric_value(gw_->admin_port, R"(nines_requests_total{route="uploads",status="204",)"
                                         R"(outcome="ok",upstream="none"})") >= 1;
  }));
}

TEST_F(gateway_uploads, a_body_sent_in_parts_is_the_body_of_the_request_that_names_it_once) {
  const auto body = screenshot_body(300000, false);
  const auto location = create(body.size(), {{"Upload-Metadata", "sha256 " + b64_sha256(body)}});
  ASSERT_TRUE(location.starts_with("/v1/uploads/")) << location;
  ASSERT_EQ(location.size(), 12u + 32u);

  const auto first = append(location, 0, body.substr(0, 100000));
  EXPECT_EQ(first.status, 204u) << first.body;
  EXPECT_EQ(first.headers.at("upload-offset"), "100000");
  EXPECT_TRUE(first.headers.count("upload-expires"));
  const auto head = tus("HEAD", location);
  EXPECT_EQ(head.status, 200u);
  EXPECT_EQ(head.headers.at("upload-offset"), "100000");
  EXPECT_EQ(head.headers.at("upload-length"), std::to_string(body.size()));
  EXPECT_EQ(head.headers.at("upload-metadata"), "sha256 " + b64_sha256(body));
  EXPECT_EQ(head.headers.at("cache-control"), "no-store");
  // Not finished: the request cannot have it yet.
  const auto early = ask_with_upload(location);
  EXPECT_EQ(early.status, 409u);
  EXPECT_EQ(error_code(early), "upload_incomplete");

  const auto rest = append(location, 100000, body.substr(100000));
  EXPECT_EQ(rest.status, 204u) << rest.body;
  EXPECT_EQ(rest.headers.at("upload-offset"), std::to_string(body.size()));

  const auto answer = ask_with_upload(location);
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer_text(answer.body), expected_answer(body, true));
  EXPECT_EQ(answer.headers.at("x-mock-body-sha256"),
            core::format_secret_digest(core::sha256_of(body)));  // the model got these bytes
  // Used: the upload ends once the request that used it has (the client may read its last byte
  // a moment before; meanwhile the upload is in use, 409), and then it is gone for good.
  EXPECT_TRUE(eventually([&] { return tus("HEAD", location).status == 410u; }));
  const auto again = ask_with_upload(location);
  EXPECT_EQ(again.status, 410u);
  EXPECT_EQ(error_code(again), "upload_gone");
}

TEST_F(gateway_uploads, a_creation_may_carry_the_first_bytes) {
  const auto body = screenshot_body(5000, false);
  const auto r = tus("POST", "/v1/uploads",
                     {{"Upload-Length", std::to_string(body.size())},
                      {"Content-Type", "application/offset+octet-stream"}},
                     body.substr(0, 3000));
  ASSERT_EQ(r.status, 201u) << r.body;
  EXPECT_EQ(r.headers.at("upload-offset"), "3000");
  const auto location = r.headers.at("location");
  EXPECT_EQ(append(location, 3000, body.substr(3000)).status, 204u);
  const auto answer = ask_with_upload(location);
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer_text(answer.body), expected_answer(body, true));
}

TEST_F(gateway_uploads, a_post_with_x_http_method_override_is_the_method_it_names) {
  // tus 1.0: for clients behind proxies that pass only GET and POST.
  const std::string body = "0123456789";
  const auto location = create(body.size());
  const auto patched = tus("POST", location,
                           {{"X-HTTP-Method-Override", "PATCH"},
                            {"Upload-Offset", "0"},
                            {"Content-Type", "application/offset+octet-stream"}},
                           body);
  EXPECT_EQ(patched.status, 204u) << patched.body;
  EXPECT_EQ(patched.headers.at("upload-offset"), "10");
  const auto wrong = tus("POST", location, {{"X-HTTP-Method-Override", "GET"}});
  EXPECT_EQ(wrong.status, 400u);
  EXPECT_EQ(error_code(wrong), "method_override_refused");
  EXPECT_EQ(tus("POST", location, {{"X-HTTP-Method-Override", "DELETE"}}).status, 204u);
  EXPECT_EQ(tus("HEAD", location).status, 410u);
}

TEST_F(gateway_uploads, a_creation_whose_first_bytes_are_refused_leaves_no_upload_behind) {
  const auto before = metric_value(gw_->admin_port, "nines_uploads");
  const auto r = tus("POST", "/v1/uploads",
                     {{"Upload-Length", "10"},
                      {"Content-Type", "application/offset+octet-stream"},
                      {"Upload-Checksum", "sha256 " + b64_sha256("something else")}},
                     "0123456789");
  EXPECT_EQ(r.status, 460u) << r.body;
  EXPECT_EQ(metric_value(gw_->admin_port, "nines_uploads"), before);
}

TEST_F(gateway_uploads, tus_refusals_have_their_status_and_a_json_error) {
  const auto expect = [](const response& r, unsigned status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body << r.error;
    EXPECT_EQ(error_code(r), code) << status;
    EXPECT_EQ(r.headers.count("tus-resumable") ? r.headers.at("tus-resumable") : "", "1.0.0")
        << code;
  };
  // The protocol's version: 412 with the versions spoken.
  const auto unversioned =
      http_call(gw_->port, "POST", "/v1/uploads", "",
                {{"Authorization", "Bearer " + secret_a}, {"Upload-Length", "10"}});
  expect(unversioned, 412, "tus_version_not_supported");
  EXPECT_EQ(unversioned.headers.at("tus-version"), "1.0.0");
  expect(http_call(gw_->port, "POST", "/v1/uploads", "",
                   {{"Authorization", "Bearer " + secret_a},
                    {"Tus-Resumable", "0.2.2"},
                    {"Upload-Length", "10"}}),
         412, "tus_version_not_supported");
  // Creation.
  expect(tus("POST", "/v1/uploads"), 400, "bad_upload_length");
  expect(tus("POST", "/v1/uploads", {{"Upload-Length", "-1"}}), 400, "bad_upload_length");
  expect(tus("POST", "/v1/uploads", {{"Upload-Defer-Length", "1"}}), 400,
         "defer_length_not_supported");
  expect(tus("POST", "/v1/uploads", {{"Upload-Length", "4194305"}}), 413, "upload_too_large");
  expect(tus("POST", "/v1/uploads", {{"Upload-Length", "10"}, {"Upload-Metadata", "a b"}}), 400,
         "bad_upload_metadata");
  expect(tus("POST", "/v1/uploads", {{"Upload-Length", "10"}, {"Upload-Metadata", "sha256 Zm9v"}}),
         400, "bad_upload_metadata");
  expect(tus("POST", "/v1/uploads", {{"Upload-Length", "10"}, {"X-HTTP-Method-Override", "PATCH"}}),
         400, "method_override_refused");
  const auto on_collection = tus("GET", "/v1/uploads");
  expect(on_collection, 405, "collection_method");
  EXPECT_EQ(on_collection.headers.at("allow"), "OPTIONS, POST");
  expect(tus("POST", "/v1/uploads?x=1", {{"Upload-Length", "10"}}), 400, "unexpected_query");
  // Keys: none, a bad one, another key's upload.
  expect(tus("POST", "/v1/uploads", {{"Upload-Length", "10"}}, "", ""), 401, "invalid_api_key");
  expect(tus("POST", "/v1/uploads", {{"Upload-Length", "10"}}, "", "not-a-key"), 401,
         "invalid_api_key");
  const auto location = create(10);
  // An answer to HEAD has no body: its status says it.
  const auto expect_head = [](const response& r, unsigned status) {
    EXPECT_EQ(r.status, status) << r.error;
    EXPECT_EQ(r.headers.count("tus-resumable") ? r.headers.at("tus-resumable") : "", "1.0.0");
  };
  expect_head(tus("HEAD", location, {}, "", secret_b), 404);
  expect(append(location, 0, "0123456789", {{"Authorization", "Bearer " + secret_b}}), 404,
         "upload_not_found");
  const auto theirs = ask_with_upload(location, secret_b);  // an API answer, not a tus one
  EXPECT_EQ(theirs.status, 404u);
  EXPECT_EQ(error_code(theirs), "upload_not_found");
  // Appends.
  expect(append(location, 1, "123"), 409, "upload_offset_mismatch");
  expect(tus("PATCH", location, {{"Upload-Offset", "0"}, {"Content-Type", "text/plain"}}, "abc"),
         415, "unsupported_media_type");
  expect(tus("PATCH", location, {{"Content-Type", "application/offset+octet-stream"}}, "abc"), 400,
         "bad_upload_offset");
  expect(append(location, 0, "01234567890"), 413, "upload_too_large");
  expect(tus("GET", location), 405, "method_not_allowed");
  expect_head(tus("HEAD", "/v1/uploads/ffffffffffffffffffffffffffffffff"), 404);
  expect_head(tus("HEAD", "/v1/uploads/not-an-id"), 404);
  // Nothing above stored a byte.
  EXPECT_EQ(tus("HEAD", location).headers.at("upload-offset"), "0");
  // Termination: then it is gone.
  EXPECT_EQ(tus("DELETE", location).status, 204u);
  expect_head(tus("HEAD", location), 410);
  expect(append(location, 0, "0123456789"), 410, "upload_gone");
  expect(tus("DELETE", location), 410, "upload_gone");
}

TEST_F(gateway_uploads, nines_upload_is_refused_where_it_would_be_ambiguous) {
  const auto body = chat_body("hello", false);
  const auto location = create(body.size());
  ASSERT_EQ(append(location, 0, body).status, 204u);
  const auto with_body =
      http_call(gw_->port, "POST", "/v1/chat/completions", body,
                {{"Authorization", "Bearer " + secret_a}, {"Nines-Upload", location}});
  EXPECT_EQ(with_body.status, 400u);
  EXPECT_EQ(error_code(with_body), "ambiguous_upload");
  const auto bad =
      http_call(gw_->port, "POST", "/v1/chat/completions", "",
                {{"Authorization", "Bearer " + secret_a}, {"Nines-Upload", location + "x"}});
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(error_code(bad), "bad_upload_reference");
  const auto models =
      http_call(gw_->port, "GET", "/v1/models", "",
                {{"Authorization", "Bearer " + secret_a}, {"Nines-Upload", location}});
  EXPECT_EQ(models.status, 400u);
  EXPECT_EQ(error_code(models), "upload_not_accepted");
  // None of these used it.
  const auto answer = ask_with_upload("http://gateway.example" + location);
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer_text(answer.body), expected_answer(body, true));
}

TEST_F(gateway_uploads, checksums_keep_an_append_only_when_it_matches) {
  const std::string part = "abcdefghij";
  const auto location = create(20);
  const auto good = append(location, 0, part, {{"Upload-Checksum", "sha256 " + b64_sha256(part)}});
  EXPECT_EQ(good.status, 204u) << good.body;
  EXPECT_EQ(good.headers.at("upload-offset"), "10");
  const auto bad = append(location, 10, part, {{"Upload-Checksum", "sha256 " + b64_sha256("x")}});
  EXPECT_EQ(bad.status, 460u);
  EXPECT_EQ(error_code(bad), "checksum_mismatch");
  EXPECT_EQ(tus("HEAD", location).headers.at("upload-offset"), "10");  // nothing of it kept
  const auto short_digest = append(location, 10, part, {{"Upload-Checksum", "sha256 Zm9vYmFy"}});
  EXPECT_EQ(short_digest.status, 400u);
  EXPECT_EQ(error_code(short_digest), "bad_upload_checksum");
  const auto md5 = append(location, 10, part, {{"Upload-Checksum", "md5 Zm9vYmFy"}});
  EXPECT_EQ(md5.status, 400u);
  EXPECT_EQ(error_code(md5), "unsupported_checksum_algorithm");
  // The body a creation declared by its digest: a different content ends the upload.
  const auto body = chat_body("hello", false);
  const auto declared = create(body.size(), {{"Upload-Metadata", "sha256 " + b64_sha256(body)}});
  std::string tampered = body;
  tampered[tampered.size() / 2] ^= 1;
  const auto refused = append(declared, 0, tampered);
  EXPECT_EQ(refused.status, 460u);
  EXPECT_EQ(error_code(refused), "upload_digest_mismatch");
  EXPECT_EQ(tus("HEAD", declared).status, 410u);
}

// A connection to the gateway that sends a PATCH head and part of its body, then stays open and
// silent: a client whose link dropped, as the gateway sees it.
class open_append {
 public:
  open_append(unsigned short port, const std::string& location, std::size_t declared,
              const std::string& first_bytes) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      throw std::runtime_error("cannot connect");
    }
    send("PATCH " + location + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret_a +
         "\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: "
         "application/offset+octet-stream\r\nContent-Length: " +
         std::to_string(declared) + "\r\n\r\n" + first_bytes);
  }
  ~open_append() { ::close(fd_); }
  void send(const std::string& bytes) {
    if (::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(bytes.size())) {
      throw std::runtime_error("send failed");
    }
  }
  std::string read_all() {
    std::string out;
    char buf[4096];
    for (;;) {
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        return out;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

TEST_F(gateway_uploads, a_resume_takes_over_from_the_append_a_dead_connection_left_open) {
  const auto body = screenshot_body(20000, false);
  const auto location = create(body.size());
  const auto kept = R"(nines_upload_bytes_received_total{result="kept"})";
  const auto before = metric_value(gw_->admin_port, kept);
  open_append dead(gw_->port, location, body.size(), body.substr(0, 7000));
  ASSERT_TRUE(eventually([&] { return metric_value(gw_->admin_port, kept) == before + 7000; }));
  // The client came back on a new connection: the old one is still open, and no lock stops it.
  const auto head = tus("HEAD", location);
  ASSERT_EQ(head.status, 200u);
  EXPECT_EQ(head.headers.at("upload-offset"), "7000");
  const auto rest = append(location, 7000, body.substr(7000));
  EXPECT_EQ(rest.status, 204u) << rest.body;
  // What the old request sends now is not the upload's any more.
  dead.send(body.substr(7000, 100));
  const auto old_answer = dead.read_all();
  EXPECT_NE(old_answer.find("HTTP/1.1 409"), std::string::npos) << old_answer;
  EXPECT_NE(old_answer.find("upload_taken_over"), std::string::npos);
  const auto answer = ask_with_upload(location);
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer.headers.at("x-mock-body-sha256"),
            core::format_secret_digest(core::sha256_of(body)));
}

TEST(gateway_uploads_config, uploads_expire_after_their_ttl) {
  auto mock = start_mock();
  const auto keys = keys_file();
  auto gw = start_gateway(uploads_toml(keys, mock.url(), "ttl_ms = 1000\n"));
  const auto r = http_call(gw.port, "POST", "/v1/uploads", "",
                           {{"Authorization", "Bearer " + secret_a},
                            {"Tus-Resumable", "1.0.0"},
                            {"Upload-Length", "10"}});
  ASSERT_EQ(r.status, 201u);
  const auto location = r.headers.at("location");
  EXPECT_TRUE(eventually(
      [&] {
        return http_call(gw.port, "HEAD", location, "",
                         {{"Authorization", "Bearer " + secret_a}, {"Tus-Resumable", "1.0.0"}})
                   .status == 410;
      },
      std::chrono::milliseconds(10000)));
  EXPECT_TRUE(
      eventually([&] { return metric_value(gw.admin_port, "nines_uploads") == 0; }));  // swept
}

}  // namespace
}  // namespace nines::test
