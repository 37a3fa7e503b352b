#pragma once
// What is wrong with the certificate chain a TLS server sent, in plain words and stable codes
// (docs/tls-check.md): `nines tls-check` prints it, and the gateway names an upstream's TLS
// failure with it. No sockets: whoever shook hands passes the chain as sent
// (SSL_get_peer_cert_chain) and a trust store; the chain is verified again here, with an
// X509_STORE_CTX that collects every error instead of stopping at the first.
//
// The verdict: `verified` is true when a strict modern client (OpenSSL at security level 2, TLS 1.2
// or newer, as the gateway is) would accept the server for that host. So weak_key,
// weak_signature and protocol_too_old make it false even where OpenSSL's own verification (which
// ignores key sizes and digests unless asked) would pass. Two codes are warnings that leave it
// true: expires_soon, and chain_out_of_order (clients re-order the certificates they were sent;
// only old or strict ones refuse).
//
// Threading: diagnose_chain may be called from any thread. It only reads `sent` and `trust` (an
// X509_STORE may be shared once built) and frees everything it creates.

#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nines::net {

// Certificates of a chain examined and reported; a server may send more (bounded only by
// OpenSSL's max_cert_list), which are counted in certificates_sent and otherwise ignored.
inline constexpr std::size_t max_chain_certificates = 10;

struct tls_problem {
  std::string code;    // missing_intermediate, expired, ... (docs/tls-check.md)
  std::string detail;  // plain words for a person; names the certificate and the date or URL
};

struct tls_chain_entry {
  std::string subject, issuer;                 // RFC 2253, bounded (x509_text.hpp)
  std::int64_t not_before = 0, not_after = 0;  // Unix seconds
  std::string key;                             // "EC P-256", "RSA 2048", "Ed25519"
  std::string signature;                       // "ecdsa-with-SHA256", "sha256WithRSAEncryption"
  std::string ca_issuers;                      // the AIA caIssuers URL, "" if none
};

struct tls_diagnosis {
  bool verified = false;
  std::string protocol, cipher, alpn;  // set by whoever shook hands; diagnose_chain leaves them
  std::vector<tls_chain_entry> chain;  // as sent, leaf first, at most max_chain_certificates
  std::size_t certificates_sent = 0;
  std::vector<tls_problem> problems;  // one per code, in the order found
};

// True for the codes that do not make `verified` false (expires_soon, chain_out_of_order).
bool is_warning(std::string_view code);

// Adds a problem (to the one of the same code, if any, after ", ") and keeps `verified` in step:
// false once any problem that is not a warning is present. For what only the handshake knows
// (protocol_too_old, handshake_failed).
void add_problem(tls_diagnosis& d, std::string_view code, std::string_view detail);

// Classifies the chain a server sent (leaf first, as sent) for `host` (DNS name or IP literal;
// empty: no host check) against `trust` (nullptr: OpenSSL's default paths), at time `now` (Unix
// seconds), with expires_soon when the leaf has less than `soon_days` left. `sent` may be nullptr
// or empty (then the only problem is handshake_failed: no certificate).
tls_diagnosis diagnose_chain(STACK_OF(X509) * sent, std::string_view host, X509_STORE* trust,
                             std::int64_t now, int soon_days = 14);

// One line for a client error or a log: "missing_intermediate: ...; expired: ..." (each code, then
// its detail, in order); "" when there is no problem.
std::string summary(const tls_diagnosis& d);

}  // namespace nines::net
