// `nines tls-check` against `openssl s_server` presenting each fixture of tls_fixtures.sh: the
// exact set of problem codes, the exit code, and the words of the details and of the text output.

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <regex>
#include <set>

#include "tls_check_run.hpp"
#include "tls_fixtures.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

std::vector<std::string> localhost_with_ca() {
  return {"--servername", "localhost", "--ca", tls_fixture("ca.pem")};
}
const std::vector<std::string> seclevel_0{"-cipher", "DEFAULT@SECLEVEL=0"};

struct verdict_case {
  std::string name;
  std::string cert, key, chain;          // what s_server presents (fixture files)
  std::vector<std::string> server_args;  // more s_server arguments
  bool with_ca;                          // --ca ca.pem, or the system's roots
  std::set<std::string> codes;           // exactly these problem codes
  int exit_code;
};

class tls_check_verdict : public ::testing::TestWithParam<verdict_case> {};

TEST_P(tls_check_verdict, names_exactly_the_expected_problems) {
  const auto& c = GetParam();
  auto server = start_openssl_server(c.cert, c.key, c.chain, c.server_args);
  auto args =
      c.with_ca ? localhost_with_ca() : std::vector<std::string>{"--servername", "localhost"};
  const auto run = run_tls_check(server.port, args);
  ASSERT_FALSE(run.report.empty()) << run.output;
  EXPECT_EQ(problem_codes(run), c.codes) << run.output;
  EXPECT_EQ(run.code, c.exit_code) << run.output;
  EXPECT_EQ(run.report.at("verified").as_bool(), c.exit_code == 0) << run.output;
  EXPECT_FALSE(run.report.at("chain").as_array().empty()) << run.output;
}

INSTANTIATE_TEST_SUITE_P(
    tls_check, tls_check_verdict,
    ::testing::Values(
        verdict_case{"chain", "leaf.pem", "leaf.key", "int.pem", {}, true, {}, 0},
        verdict_case{
            "leaf_only", "leaf.pem", "leaf.key", "", {}, true, {"missing_intermediate"}, 1},
        verdict_case{"reversed",
                     "leaf.pem",
                     "leaf.key",
                     "reversed.pem",
                     {},
                     true,
                     {"chain_out_of_order"},
                     0},
        verdict_case{"root_before_intermediate",
                     "leaf.pem",
                     "leaf.key",
                     "root-int.pem",
                     {},
                     true,
                     {"chain_out_of_order"},
                     0},
        verdict_case{"expired", "expired.pem", "expired.key", "int.pem", {}, true, {"expired"}, 1},
        verdict_case{
            "future", "future.pem", "future.key", "int.pem", {}, true, {"not_yet_valid"}, 1},
        verdict_case{"soon", "soon.pem", "soon.key", "int.pem", {}, true, {"expires_soon"}, 0},
        verdict_case{"wronghost",
                     "wronghost.pem",
                     "wronghost.key",
                     "int.pem",
                     {},
                     true,
                     {"hostname_mismatch"},
                     1},
        verdict_case{
            "selfsigned", "selfsigned.pem", "selfsigned.key", "", {}, true, {"self_signed"}, 1},
        verdict_case{"root_sent_not_in_ca",
                     "untrusted.pem",
                     "untrusted.key",
                     "untrusted-root.pem",
                     {},
                     true,
                     {"untrusted_root"},
                     1},
        verdict_case{"chain_without_ca",
                     "leaf.pem",
                     "leaf.key",
                     "int.pem",
                     {},
                     false,
                     {"untrusted_root"},
                     1},
        verdict_case{
            "weakkey", "weakkey.pem", "weakkey.key", "int.pem", seclevel_0, true, {"weak_key"}, 1},
        verdict_case{
            "sha1", "sha1.pem", "sha1.key", "int.pem", seclevel_0, true, {"weak_signature"}, 1},
        verdict_case{"tls1_1_only",
                     "leaf.pem",
                     "leaf.key",
                     "int.pem",
                     {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"},
                     true,
                     {"protocol_too_old"},
                     1},
        verdict_case{"client_certificate",
                     "client.pem",
                     "client.key",
                     "",
                     {},
                     true,
                     {"verify_failed", "hostname_mismatch"},
                     1}),
    [](const ::testing::TestParamInfo<verdict_case>& info) { return info.param.name; });

const std::regex rfc3339_shape(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)");

TEST(tls_check, a_complete_chain_is_described_certificate_by_certificate) {
  auto server = start_openssl_server("leaf.pem", "leaf.key", "int.pem");
  const auto run = run_tls_check(server.port, localhost_with_ca());
  ASSERT_EQ(run.code, 0) << run.output;
  const auto& r = run.report;
  EXPECT_EQ(r.at("target").as_string(), "127.0.0.1:" + std::to_string(server.port));
  EXPECT_EQ(r.at("servername").as_string(), "localhost");
  EXPECT_EQ(r.at("protocol").as_string(), "TLSv1.3");
  EXPECT_NE(r.at("cipher").as_string().find("TLS_"), json::string::npos) << run.output;
  EXPECT_EQ(r.at("alpn").as_string(), "");  // s_server -www selects none
  EXPECT_EQ(r.at("certificates_sent").as_int64(), 2);
  const auto& chain = r.at("chain").as_array();
  ASSERT_EQ(chain.size(), 2U) << run.output;
  const auto& leaf = chain[0].as_object();
  EXPECT_EQ(leaf.at("subject").as_string(), "CN=localhost");
  EXPECT_EQ(leaf.at("issuer").as_string(), "CN=nines test intermediate");
  EXPECT_EQ(leaf.at("key").as_string(), "EC P-256");
  EXPECT_EQ(leaf.at("signature").as_string(), "ecdsa-with-SHA256");
  EXPECT_EQ(leaf.at("ca_issuers").as_string(), "http://127.0.0.1:1/int.pem");
  EXPECT_TRUE(std::regex_match(std::string(leaf.at("not_before").as_string()), rfc3339_shape));
  EXPECT_TRUE(std::regex_match(std::string(leaf.at("not_after").as_string()), rfc3339_shape));
  const auto& intermediate = chain[1].as_object();
  EXPECT_EQ(intermediate.at("subject").as_string(), "CN=nines test intermediate");
  EXPECT_EQ(intermediate.at("issuer").as_string(), "CN=nines test root");
  EXPECT_EQ(intermediate.at("ca_issuers").as_string(), "");
  EXPECT_TRUE(r.at("problems").as_array().empty());
}

TEST(tls_check, the_text_output_names_each_certificate_and_the_verdict) {
  auto server = start_openssl_server("leaf.pem", "leaf.key", "int.pem");
  const auto ok = run_tls_check(server.port, localhost_with_ca(), false);
  EXPECT_EQ(ok.code, 0) << ok.output;
  for (const std::string line :
       {"protocol    TLSv1.3", "chain as sent (2 certificates):", "  0 subject    CN=localhost",
        "    issuer     CN=nines test intermediate", "    key        EC P-256",
        "    signature  ecdsa-with-SHA256", "    ca issuers http://127.0.0.1:1/int.pem",
        "  1 subject    CN=nines test intermediate", "    issuer     CN=nines test root",
        "\nverdict: verified\n"}) {
    EXPECT_NE(ok.output.find(line), std::string::npos) << line << "\n" << ok.output;
  }
  auto alone = start_openssl_server("leaf.pem", "leaf.key", "");
  const auto bad = run_tls_check(alone.port, localhost_with_ca(), false);
  EXPECT_EQ(bad.code, 1) << bad.output;
  EXPECT_NE(bad.output.find("\nverdict: NOT verified\n  missing_intermediate: "), std::string::npos)
      << bad.output;
}

TEST(tls_check, missing_intermediate_names_the_aia_url_of_the_leaf) {
  auto server = start_openssl_server("leaf.pem", "leaf.key", "");
  const auto run = run_tls_check(server.port, localhost_with_ca());
  const auto detail = problem_detail(run, "missing_intermediate");
  EXPECT_NE(detail.find("http://127.0.0.1:1/int.pem"), std::string::npos) << run.output;
  EXPECT_NE(detail.find("CN=nines test intermediate"), std::string::npos) << run.output;
}

TEST(tls_check, dates_are_named_with_the_certificate) {
  auto expired = start_openssl_server("expired.pem", "expired.key", "int.pem");
  const auto e = run_tls_check(expired.port, localhost_with_ca());
  EXPECT_EQ(problem_detail(e, "expired"), "'CN=localhost' expired on 2020-02-01T00:00:00Z")
      << e.output;
  EXPECT_EQ(e.report.at("chain").at(0).at("not_after").as_string(), "2020-02-01T00:00:00Z");
  auto future = start_openssl_server("future.pem", "future.key", "int.pem");
  const auto f = run_tls_check(future.port, localhost_with_ca());
  EXPECT_EQ(problem_detail(f, "not_yet_valid"),
            "'CN=localhost' is not valid until 2099-01-01T00:00:00Z")
      << f.output;
  auto soon = start_openssl_server("soon.pem", "soon.key", "int.pem");
  const auto s = run_tls_check(soon.port, localhost_with_ca());
  EXPECT_NE(problem_detail(s, "expires_soon").find("expires in 5 days"), std::string::npos)
      << s.output;
}

TEST(tls_check, hostname_mismatch_lists_the_names_the_leaf_is_for) {
  auto server = start_openssl_server("wronghost.pem", "wronghost.key", "int.pem");
  const auto run = run_tls_check(server.port, localhost_with_ca());
  EXPECT_EQ(problem_detail(run, "hostname_mismatch"),
            "the leaf is for DNS:wrong.example, not localhost")
      << run.output;
  // A wildcard covers exactly one label.
  auto other = start_openssl_server("other.pem", "other.key", "int.pem");
  const std::vector<std::string> ca{"--ca", tls_fixture("ca.pem")};
  auto one_label = ca;
  one_label.insert(one_label.end(), {"--servername", "api.wild.test"});
  EXPECT_EQ(run_tls_check(other.port, one_label).code, 0);
  auto two_labels = ca;
  two_labels.insert(two_labels.end(), {"--servername", "a.b.wild.test"});
  const auto two = run_tls_check(other.port, two_labels);
  EXPECT_EQ(problem_detail(two, "hostname_mismatch"),
            "the leaf is for DNS:other.test, DNS:*.wild.test, not a.b.wild.test")
      << two.output;
  // Without --servername the host is checked: here the IP literal, which the leaf names.
  EXPECT_EQ(run_tls_check(server.port, ca).report.at("servername").as_string(), "127.0.0.1");
  auto leaf = start_openssl_server("leaf.pem", "leaf.key", "int.pem");
  EXPECT_EQ(run_tls_check(leaf.port, ca).code, 0);
}

TEST(tls_check, the_servername_is_sent_as_sni) {
  auto server = start_openssl_server("leaf.pem", "leaf.key", "int.pem",
                                     {"-servername", "other.test", "-cert2",
                                      tls_fixture("other.pem"), "-key2", tls_fixture("other.key")});
  const auto other = run_tls_check(server.port, {"--servername", "other.test"});
  EXPECT_EQ(other.report.at("chain").at(0).at("subject").as_string(), "CN=other.test")
      << other.output;
  const auto local = run_tls_check(server.port, {"--servername", "localhost"});
  EXPECT_EQ(local.report.at("chain").at(0).at("subject").as_string(), "CN=localhost")
      << local.output;
}

TEST(tls_check, weak_keys_and_signatures_are_named) {
  auto weak = start_openssl_server("weakkey.pem", "weakkey.key", "int.pem", seclevel_0);
  const auto w = run_tls_check(weak.port, localhost_with_ca());
  EXPECT_EQ(w.report.at("chain").at(0).at("key").as_string(), "RSA 1024") << w.output;
  EXPECT_NE(problem_detail(w, "weak_key").find("'CN=localhost' has key RSA 1024"),
            std::string::npos)
      << w.output;
  auto sha1 = start_openssl_server("sha1.pem", "sha1.key", "int.pem", seclevel_0);
  const auto s = run_tls_check(sha1.port, localhost_with_ca());
  EXPECT_EQ(s.report.at("chain").at(0).at("signature").as_string(), "ecdsa-with-SHA1") << s.output;
  EXPECT_NE(problem_detail(s, "weak_signature").find("ecdsa-with-SHA1"), std::string::npos)
      << s.output;
}

TEST(tls_check, protocol_too_old_names_the_protocol) {
  auto server = start_openssl_server("leaf.pem", "leaf.key", "int.pem",
                                     {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"});
  const auto run = run_tls_check(server.port, localhost_with_ca());
  EXPECT_EQ(run.report.at("protocol").as_string(), "TLSv1.1") << run.output;
  EXPECT_NE(problem_detail(run, "protocol_too_old").find("TLSv1.1"), std::string::npos);
}

TEST(tls_check, at_most_10_certificates_of_a_long_chain_are_examined) {
  const auto path = tls_fixture("int-13-times.pem");
  {
    std::ofstream out(path);
    const auto intermediate = read_file(tls_fixture("int.pem"));
    for (int i = 0; i < 13; ++i) {
      out << intermediate;
    }
  }
  auto server = start_openssl_server("leaf.pem", "leaf.key", "int-13-times.pem");
  const auto run = run_tls_check(server.port, localhost_with_ca());
  EXPECT_EQ(run.report.at("certificates_sent").as_int64(), 14) << run.output;
  EXPECT_EQ(run.report.at("chain").as_array().size(), 10U) << run.output;
  EXPECT_EQ(problem_codes(run), std::set<std::string>{"chain_out_of_order"}) << run.output;
  const auto text = run_tls_check(server.port, localhost_with_ca(), false);
  EXPECT_NE(text.output.find("chain as sent (14 certificates, the first 10 shown):"),
            std::string::npos)
      << text.output;
}

TEST(tls_check, no_handshake_is_handshake_failed_with_the_reason) {
  boost::asio::io_context ctx;
  using tcp = boost::asio::ip::tcp;
  unsigned short closed_port = 0;
  {
    tcp::acceptor probe(ctx, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    closed_port = probe.local_endpoint().port();
  }
  const auto refused = run_tls_check(closed_port, {});
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_EQ(problem_codes(refused), std::set<std::string>{"handshake_failed"});
  EXPECT_NE(problem_detail(refused, "handshake_failed").find("Connection refused"),
            std::string::npos)
      << refused.output;

  auto plain = start_mock();  // HTTP, not TLS
  const auto http = run_tls_check(plain.port, {});
  EXPECT_EQ(http.code, 1) << http.output;
  EXPECT_EQ(problem_codes(http), std::set<std::string>{"handshake_failed"});
  EXPECT_NE(problem_detail(http, "handshake_failed").find("wrong version number"),
            std::string::npos)
      << http.output;

  // A listener that never answers (the kernel accepts; nobody reads): the deadline ends it.
  tcp::acceptor silent(ctx, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const auto quiet = run_tls_check(silent.local_endpoint().port(), {"--timeout-ms", "300"});
  EXPECT_EQ(quiet.code, 1) << quiet.output;
  EXPECT_EQ(problem_detail(quiet, "handshake_failed"), "no handshake before the deadline")
      << quiet.output;

  // A server with no cipher in common answers with an alert, which the detail names.
  auto v13 = start_openssl_server("leaf.pem", "leaf.key", "int.pem",
                                  {"-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_8_SHA256"});
  const auto alert = run_tls_check(v13.port, localhost_with_ca());
  EXPECT_EQ(alert.code, 1) << alert.output;
  EXPECT_NE(problem_detail(alert, "handshake_failed").find("alert"), std::string::npos)
      << alert.output;
}

TEST(tls_check, bad_usage_exits_2_with_a_message) {
  const std::vector<std::vector<std::string>> cases{
      {},
      {"localhost"},
      {"127.0.0.1:0"},
      {"127.0.0.1:65536"},
      {"::1:443"},
      {"[::1:443"},
      {"127.0.0.1:443", "--ca", tls_fixture("no-such-file.pem")},
      {"127.0.0.1:443", "--ca", tls_fixture("ca.cnf")},  // not PEM certificates
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv{NINES_BINARY, "tls-check"};
    argv.insert(argv.end(), args.begin(), args.end());
    process p(argv);
    const auto code = p.wait_exit(milliseconds(15000));
    const auto output = p.output();
    EXPECT_EQ(code, 2) << output;
    EXPECT_NE(output.find("nines tls-check: "), std::string::npos) << output;
  }
}

}  // namespace
}  // namespace nines::test
