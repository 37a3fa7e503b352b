#pragma once
// The TLS tests' certificates (tls_fixtures.sh: what each file is) and `openssl s_server`
// presenting them.

#include <memory>
#include <string>
#include <vector>

#include "harness.hpp"

namespace nines::test {

// The directory tls_fixtures.sh filled, once per test process (removed when it exits).
std::string tls_fixture_dir();
// A file in it: tls_fixture("ca.pem").
std::string tls_fixture(const std::string& name);

// `openssl s_server -www` on an ephemeral loopback port, once it accepts; killed when destroyed.
struct openssl_server {
  std::unique_ptr<process> proc;
  unsigned short port = 0;
};
// Presents fixture `cert` (only its first certificate: s_server sends no more from -cert) with
// `key`, then the certificates of fixture file `chain` in their order ("" for none), with `extra`
// arguments (-tls1_1, -cipher ...).
openssl_server start_openssl_server(const std::string& cert, const std::string& key,
                                    const std::string& chain,
                                    const std::vector<std::string>& extra = {});

}  // namespace nines::test
