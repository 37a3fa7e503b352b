// `nines tls-check` agrees with testssl.sh (Debian's testssl.sh, /usr/bin/testssl) on the chain of
// trust, the expiry, the host name, the certificates sent and their order, and the protocols, for
// servers that get different verdicts. testssl runs offline: no DNS (--nodns none), no CRL or
// OCSP fetching (it phones out only with --phone-out), and only 127.0.0.1 as its target. Its
// scans are slow (10 to 25 s each on this 2-core machine), so they run side by side.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <map>
#include <memory>

#include "tls_check_run.hpp"
#include "tls_fixtures.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

constexpr const char* testssl = "/usr/bin/testssl";

struct scan {
  std::string name;
  std::string cert, key, chain;
  std::vector<std::string> server_args;
  bool certificates;  // -S (server defaults: the certificate findings) as well as -p (protocols)
  openssl_server server;
  std::unique_ptr<process> testssl;
  std::string json_file;
};

// testssl's findings by id ("cert_chain_of_trust" -> "failed (chain incomplete).").
std::map<std::string, std::string> findings(const std::string& path) {
  std::map<std::string, std::string> out;
  boost::system::error_code ec;
  const auto value = json::parse(read_file(path), ec);
  if (ec || !value.is_array()) {
    return out;
  }
  for (const auto& f : value.as_array()) {
    const auto& o = f.as_object();
    out.emplace(std::string(o.at("id").as_string()), std::string(o.at("finding").as_string()));
  }
  return out;
}

bool offered(const std::map<std::string, std::string>& f, const std::string& id) {
  const auto it = f.find(id);
  return it != f.end() && it->second.rfind("offered", 0) == 0;
}

TEST(tls_check_testssl, agrees_on_trust_expiry_host_certificates_and_protocols) {
  ASSERT_TRUE(std::filesystem::exists(testssl))
      << "testssl is missing: scripts/install-deps.sh test installs it (Debian package "
         "testssl.sh)";
  std::vector<scan> scans;
  scans.push_back({"chain", "leaf.pem", "leaf.key", "int.pem", {}, true, {}, {}, {}});
  scans.push_back({"leaf_only", "leaf.pem", "leaf.key", "", {}, true, {}, {}, {}});
  scans.push_back({"expired", "expired.pem", "expired.key", "int.pem", {}, true, {}, {}, {}});
  scans.push_back({"selfsigned", "selfsigned.pem", "selfsigned.key", "", {}, true, {}, {}, {}});
  // testssl's own OpenSSL (Debian's, MinProtocol TLSv1.2) cannot shake hands with TLS 1.1, so
  // this one has its protocols checked only (testssl does those with its own sockets).
  scans.push_back({"tls1_1_only",
                   "leaf.pem",
                   "leaf.key",
                   "int.pem",
                   {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"},
                   false,
                   {},
                   {},
                   {}});
  for (auto& s : scans) {
    s.server = start_openssl_server(s.cert, s.key, s.chain, s.server_args);
    s.json_file = tls_fixture("testssl-" + s.name + ".json");
    std::filesystem::remove(s.json_file);
    std::vector<std::string> args{testssl,      "--quiet",   "--color",    "0",
                                  "--nodns",    "none",      "--warnings", "off",
                                  "--jsonfile", s.json_file, "--add-ca",   tls_fixture("ca.pem"),
                                  "-p"};
    if (s.certificates) {
      args.push_back("-S");
    }
    args.push_back("127.0.0.1:" + std::to_string(s.server.port));
    s.testssl = std::make_unique<process>(args);
  }
  for (auto& s : scans) {
    SCOPED_TRACE(s.name);
    const auto run =
        run_tls_check(s.server.port, {"--servername", "localhost", "--ca", tls_fixture("ca.pem")});
    ASSERT_FALSE(run.report.empty()) << run.output;
    const auto codes = problem_codes(run);
    ASSERT_TRUE(s.testssl->wait_exit(milliseconds(110000))) << s.testssl->output();
    const auto f = findings(s.json_file);
    ASSERT_FALSE(f.empty()) << s.testssl->output();

    // Protocols: "too old" when nothing from TLS 1.2 up is offered, and something older is.
    const bool testssl_too_old = !offered(f, "TLS1_2") && !offered(f, "TLS1_3") &&
                                 (offered(f, "TLS1_1") || offered(f, "TLS1"));
    EXPECT_EQ(testssl_too_old, codes.count("protocol_too_old") == 1) << run.output;
    EXPECT_EQ(testssl_too_old, s.name == "tls1_1_only");
    if (!s.certificates) {
      continue;
    }
    // The chain of trust: passed, or failed with the reason that is our code.
    const auto trust = f.at("cert_chain_of_trust");
    const bool testssl_trusts = trust.rfind("passed", 0) == 0;
    EXPECT_EQ(testssl_trusts, run.report.at("verified").as_bool()) << trust << "\n" << run.output;
    EXPECT_EQ(trust.find("chain incomplete") != std::string::npos,
              codes.count("missing_intermediate") == 1)
        << trust << "\n"
        << run.output;
    EXPECT_EQ(trust.find("self signed") != std::string::npos, codes.count("self_signed") == 1)
        << trust << "\n"
        << run.output;
    EXPECT_EQ(trust.find("expired") != std::string::npos, codes.count("expired") == 1)
        << trust << "\n"
        << run.output;
    EXPECT_EQ(f.at("cert_expirationStatus") == "expired", codes.count("expired") == 1)
        << f.at("cert_expirationStatus");
    // The host name, the certificates sent and their order.
    EXPECT_EQ(f.at("cert_trust").rfind("Ok", 0) == 0, codes.count("hostname_mismatch") == 0)
        << f.at("cert_trust");
    EXPECT_EQ(f.at("certs_countServer"),
              std::to_string(run.report.at("certificates_sent").as_int64()));
    EXPECT_EQ(f.at("certs_list_ordering_problem") == "no", codes.count("chain_out_of_order") == 0);
    // And the expected verdicts, so that agreeing on nothing cannot pass.
    const std::map<std::string, std::string> expected{{"chain", "passed."},
                                                      {"leaf_only", "failed (chain incomplete)."},
                                                      {"expired", "failed (expired)."},
                                                      {"selfsigned", "failed (self signed)."}};
    EXPECT_EQ(trust, expected.at(s.name));
  }
}

}  // namespace
}  // namespace nines::test
