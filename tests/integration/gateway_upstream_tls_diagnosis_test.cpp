// An upstream's TLS failure is named: the four failures that used to say only "certificate verify
// failed" (missing intermediate, expired, wrong host, self-signed) each give their tls-check
// problem code (docs/tls-check.md) in the client's error, in the log and in /status.

#include <gtest/gtest.h>

#include "harness.hpp"
#include "tls_fixtures.hpp"

namespace nines::test {
namespace {

struct upstream_case {
  const char* name;
  const char* cert;
  const char* key;
  const char* chain;
  const char* code;
};

class gateway_upstream_tls_diagnosis : public ::testing::TestWithParam<upstream_case> {};

TEST_P(gateway_upstream_tls_diagnosis, names_the_problem_in_the_error_the_log_and_status) {
  const auto& c = GetParam();
  auto upstream = start_openssl_server(c.cert, c.key, c.chain);
  auto gw = start_gateway("[[upstreams]]\nname = \"tls\"\nurl = \"https://localhost:" +
                          std::to_string(upstream.port) + "/v1\"\nca_file = \"" +
                          tls_fixture("ca.pem") + "\"\n[retry]\nmax_attempts = 1\n");
  const auto r = http_call(gw.port, "GET", "/v1/models");
  EXPECT_EQ(r.status, 502U) << r.body;
  EXPECT_NE(r.body.find(std::string("tls: ") + c.code + ": "), std::string::npos) << r.body;
  EXPECT_TRUE(gw.proc->wait_for_output(std::string("upstream tls: TLS handshake failed: tls: ") +
                                       c.code + ": "))
      << gw.proc->output();
  EXPECT_TRUE(eventually([&] {
    return http_call(gw.admin_port, "GET", "/status").body.find(c.code) != std::string::npos;
  })) << http_call(gw.admin_port, "GET", "/status").body;
}

INSTANTIATE_TEST_SUITE_P(
    failures, gateway_upstream_tls_diagnosis,
    ::testing::Values(upstream_case{"leaf_only", "leaf.pem", "leaf.key", "", "missing_intermediate"},
                      upstream_case{"expired", "expired.pem", "expired.key", "int.pem", "expired"},
                      upstream_case{"wrong_host", "wronghost.pem", "wronghost.key", "int.pem",
                                    "hostname_mismatch"},
                      upstream_case{"self_signed", "selfsigned.pem", "selfsigned.key", "",
                                    "self_signed"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace nines::test
