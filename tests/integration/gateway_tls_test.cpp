// Upstream TLS: the certificate chain and the host name are verified by default.

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "harness.hpp"

namespace nines::test {
namespace {

struct tls_server {
  std::unique_ptr<process> proc;
  unsigned short port = 0;
};

// A throwaway certificate for "localhost", and `openssl s_server -www` presenting it.
class gateway_tls : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/nines-tls-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    process gen({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", dir_ + "/key.pem", "-out",
                 dir_ + "/cert.pem", "-days", "2", "-subj", "/CN=localhost", "-addext",
                 "subjectAltName=DNS:localhost"});
    ASSERT_EQ(gen.wait_exit(), 0) << gen.output();
    server_.proc = std::make_unique<process>(std::vector<std::string>{
        "/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", dir_ + "/cert.pem",
        "-key", dir_ + "/key.pem", "-www"});
    auto line = server_.proc->wait_for_output("ACCEPT 127.0.0.1:");
    ASSERT_TRUE(line) << server_.proc->output();
    server_.port = static_cast<unsigned short>(std::stoi(line->substr(line->rfind(':') + 1)));
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string upstream(const std::string& host, const std::string& extra) {
    return "[[upstreams]]\nname = \"tls\"\nurl = \"https://" + host + ":" +
           std::to_string(server_.port) + "/v1\"\n" + extra +
           "[retry]\nmax_attempts = 1\n";
  }

  std::string dir_;
  tls_server server_;
};

TEST_F(gateway_tls, unknown_issuer_is_refused_by_default) {
  auto gw = start_gateway(upstream("localhost", ""));
  auto r = http_call(gw.port, "GET", "/v1/models");
  EXPECT_EQ(r.status, 502U);
  EXPECT_NE(r.body.find("tls_error"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("tls: self_signed: "), std::string::npos) << r.body;
}

TEST_F(gateway_tls, trusted_chain_with_matching_name_is_accepted) {
  auto gw = start_gateway(upstream("localhost", "ca_file = \"" + dir_ + "/cert.pem\"\n"));
  auto r = http_call(gw.port, "GET", "/v1/models");
  EXPECT_EQ(r.status, 200U) << r.body;
  EXPECT_NE(r.body.find("<HTML>"), std::string::npos);  // s_server's status page
  // Probes report the upstream's certificate expiry (the fixture is valid for two days).
  const std::string expiry = "nines_upstream_certificate_expiry_seconds{upstream=\"tls\"}";
  EXPECT_TRUE(eventually([&] { return metric_value(gw.admin_port, expiry) > 0; }));
  EXPECT_GT(metric_value(gw.admin_port, expiry), 86400U);
  EXPECT_LE(metric_value(gw.admin_port, expiry), 2U * 86400);
}

TEST_F(gateway_tls, trusted_chain_with_the_wrong_name_is_refused) {
  // The certificate names "localhost"; dialling 127.0.0.1 must not match it.
  auto gw = start_gateway(upstream("127.0.0.1", "ca_file = \"" + dir_ + "/cert.pem\"\n"));
  auto r = http_call(gw.port, "GET", "/v1/models");
  EXPECT_EQ(r.status, 502U);
  EXPECT_NE(r.body.find("tls_error"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("tls: hostname_mismatch: "), std::string::npos) << r.body;
}

}  // namespace
}  // namespace nines::test
