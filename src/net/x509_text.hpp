#pragma once
// Certificate fields as text, for what the listener serves (tls_server_identity) and what a
// server sent (tls_diagnosis). The certificates may come from anyone: every string is bounded and
// printable (RFC 2253 escaping turns control and non-ASCII bytes into \XX; other fields have them
// replaced by '?'), and a field that is missing or does not parse gives an empty or zero value.

#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nines::net {

// Longest text any one field becomes; longer ones end in "...".
inline constexpr std::size_t max_certificate_text = 256;

// "CN=localhost,O=Example" (RFC 2253, most specific first); "" for none.
std::string name_text(const X509_NAME* name);

// Unix seconds; 0 when the time does not parse.
std::int64_t unix_time(const ASN1_TIME* time);

// "2026-01-31T12:00:00Z".
std::string rfc3339(std::int64_t unix_seconds);

// `text` cut to max_certificate_text bytes, bytes outside printable ASCII replaced by '?'.
std::string printable(std::string_view text);

struct key_description {
  std::string text;   // "EC P-256", "RSA 2048", "Ed25519", "unknown"
  bool weak = false;  // RSA or DSA below 2048 bits, EC below 256
};
key_description public_key_text(const X509* x);

struct signature_description {
  std::string text;   // "ecdsa-with-SHA256", "sha256WithRSAEncryption", or the OID
  bool weak = false;  // the digest is SHA-1, MD5 or older
};
signature_description signature_text(X509* x);  // not const: OpenSSL caches what it decodes

// The Authority Information Access caIssuers URL (where the issuer's certificate can be
// fetched); "" if none.
std::string ca_issuers_url(const X509* x);

// "DNS:wrong.example, IP:10.0.0.1": the subjectAltName DNS and IP entries, at most `max_names`
// ("... and 3 more"); "" when there are none.
std::string subject_alt_names(const X509* x, std::size_t max_names = 20);

}  // namespace nines::net
