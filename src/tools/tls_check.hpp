#pragma once
// `nines tls-check HOST:PORT`: what a TLS server presents and what is wrong with it. It connects
// (at most `timeout_ms` for connect and handshake together), shakes hands with verification off
// so that any chain can be looked at (TLS 1.0 and newer at security level 0, so that old protocols
// and weak keys are reported rather than refused), offers ALPN h2 and http/1.1 and sends SNI,
// then prints the protocol, cipher, ALPN, each certificate as sent and the verdict of
// net::diagnose_chain (docs/tls-check.md), plus protocol_too_old below TLS 1.2 and
// handshake_failed (with the alert or OpenSSL's reason) when there was no handshake.
// Exit code 0 when verified, 1 when not (or no handshake), 2 on bad usage.

#include <string>

namespace CLI {
class App;
}

namespace nines::tools {

struct tls_check_options {
  std::string target;           // HOST:PORT or [IPv6]:PORT
  std::string servername;       // SNI and the name checked; default HOST (SNI only for a DNS name)
  std::string ca_file;          // PEM roots to trust instead of the system's
  bool json = false;            // one JSON object instead of text
  unsigned timeout_ms = 10000;  // connect and handshake together
};

void add_tls_check_options(CLI::App& app, tls_check_options& options);
int run_tls_check(const tls_check_options& options);

}  // namespace nines::tools
