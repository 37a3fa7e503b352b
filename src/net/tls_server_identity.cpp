#include "net/tls_server_identity.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "net/x509_text.hpp"

namespace nines::net {
namespace {

// TLS 1.2's suites: ECDHE key exchange and AEAD ciphers only (Mozilla's "intermediate" without
// DHE). TLS 1.3's are OpenSSL's defaults, all AEAD.
constexpr const char* tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* key_groups = "X25519:P-256:P-384";
constexpr unsigned char session_context[] = "nines-api";

// What OpenSSL queued, oldest first, in its own words ("no certificate matches private key").
std::string drain_openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(e);
    if (!out.empty()) {
      out += "; ";
    }
    out += reason != nullptr ? reason : fmt::format("error {:x}", e);
  }
  return out.empty() ? "unknown error" : out;
}

// Never prompts for a passphrase (a daemon has no terminal): an encrypted key fails to load.
int refuse_passphrase(char*, int, int, void*) { return 0; }

// ALPN: HTTP/1.1 is what we speak. A client offering protocols but not it (h2 only) is refused
// with no_application_protocol (RFC 7301 §3.2), never answered in a protocol it did not ask for.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  static constexpr unsigned char http11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned int i = 0; i < in_len;) {
    const unsigned int len = in[i];
    if (i + 1 + len > in_len) {
      break;
    }
    if (len == sizeof http11 && std::equal(in + i + 1, in + i + 1 + len, http11)) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(len);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Why `path` cannot be opened for reading ("No such file or directory"), if it cannot.
std::optional<std::string> unreadable(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return std::string(std::strerror(errno));
  }
  std::fclose(f);
  return std::nullopt;
}

EVP_PKEY* read_private_key(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) {
    return nullptr;
  }
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, refuse_passphrase, nullptr);
  BIO_free(bio);
  return key;
}

struct built {
  std::unique_ptr<asio::ssl::context> context;
  served_certificate served;
};

// One context: policy, the certificate chain and its key, and (with mTLS) the client CA. Returns
// nullptr context and records problems under `prefix` ("tls." or "tls.sni[2].").
built build_context(const core::tls_listener_settings& s, const std::string& prefix,
                    const std::string& cert_file, const std::string& key_file,
                    std::vector<core::config_problem>& problems) {
  built b;
  ERR_clear_error();
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, s.min_version == core::tls_min_version::tls1_3
                                            ? TLS1_3_VERSION
                                            : TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                  SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_cipher_list(native, tls12_ciphers);
  SSL_CTX_set1_groups_list(native, key_groups);
  SSL_CTX_set_session_id_context(native, session_context, sizeof session_context - 1);
  SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
  SSL_CTX_set_default_passwd_cb(native, refuse_passphrase);

  const auto fail = [&](const std::string& key, const std::string& what) {
    problems.push_back({prefix + key, 0, 0, what});
  };
  if (auto why = unreadable(cert_file)) {
    fail("cert_file", fmt::format("{}: {}", cert_file, *why));
    return b;
  }
  if (SSL_CTX_use_certificate_chain_file(native, cert_file.c_str()) != 1) {
    fail("cert_file", fmt::format("cannot be read as a PEM certificate chain: {} ({})", cert_file,
                                  drain_openssl_errors()));
    return b;
  }
  if (auto why = unreadable(key_file)) {
    fail("key_file", fmt::format("{}: {}", key_file, *why));
    return b;
  }
  EVP_PKEY* key = read_private_key(key_file);
  if (key == nullptr) {
    fail("key_file", fmt::format("cannot be read as an unencrypted PEM private key: {} ({})",
                                 key_file, drain_openssl_errors()));
    return b;
  }
  const bool matches = SSL_CTX_use_PrivateKey(native, key) == 1;
  EVP_PKEY_free(key);
  if (!matches) {
    fail("key_file", fmt::format("{} is not the key of the certificate in {} ({})", key_file,
                                 cert_file, drain_openssl_errors()));
    return b;
  }
  X509* leaf = SSL_CTX_get0_certificate(native);
  b.served.subject = name_text(X509_get_subject_name(leaf));
  b.served.not_after = unix_time(X509_get0_notAfter(leaf));
  b.served.cert_file = cert_file;
  if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0) {
    fail("cert_file", fmt::format("{}: the certificate ({}) expired", cert_file, b.served.subject));
    return b;
  }
  if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0) {
    fail("cert_file",
         fmt::format("{}: the certificate ({}) is not valid yet", cert_file, b.served.subject));
    return b;
  }
  if (!s.client_ca_file.empty()) {
    if (auto why = unreadable(s.client_ca_file)) {
      problems.push_back({"tls.client_ca_file", 0, 0, fmt::format("{}: {}", s.client_ca_file, *why)});
      return b;
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_ca_file.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(native, s.client_ca_file.c_str(), nullptr) != 1) {
      if (names != nullptr) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
      }
      problems.push_back({"tls.client_ca_file", 0, 0,
                          fmt::format("cannot be read as PEM CA certificates: {} ({})",
                                      s.client_ca_file, drain_openssl_errors())});
      return b;
    }
    SSL_CTX_set_client_CA_list(native, names);  // takes ownership
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  }
  b.context = std::move(ctx);
  return b;
}

}  // namespace

int match_server_name(const std::vector<std::string>& patterns, std::string_view host) {
  std::string name(host);
  for (auto& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!name.empty() && name.back() == '.') {
    name.pop_back();  // "example.com." is "example.com"
  }
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    if (patterns[i] == name) {
      return static_cast<int>(i);
    }
  }
  const auto dot = name.find('.');
  if (dot == std::string::npos || dot == 0) {
    return -1;
  }
  const std::string wildcard = "*" + name.substr(dot);
  for (std::size_t i = 0; i < patterns.size(); ++i) {
    if (patterns[i] == wildcard) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

tls_server_identity::~tls_server_identity() = default;

int tls_server_identity::on_server_name(SSL* ssl, int*, void* arg) {
  const auto* self = static_cast<const tls_server_identity*>(arg);
  const char* host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (host == nullptr) {
    return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  }
  const int i = match_server_name(self->names_, host);
  if (i >= 0) {
    SSL_set_SSL_CTX(ssl, self->contexts_[static_cast<std::size_t>(i) + 1]->native_handle());
  }
  // An unknown name gets the default certificate, as with any web server; the client's own
  // verification decides whether it fits.
  return SSL_TLSEXT_ERR_OK;
}

tls_server_identity::load_result tls_server_identity::load(
    const core::tls_listener_settings& settings) {
  load_result r;
  std::shared_ptr<tls_server_identity> id(new tls_server_identity());
  id->mtls_ = !settings.client_ca_file.empty();
  auto first = build_context(settings, "tls.", settings.cert_file, settings.key_file, r.problems);
  if (first.context) {
    id->served_.push_back(first.served);
    id->contexts_.push_back(std::move(first.context));
  }
  for (std::size_t i = 0; i < settings.sni.size(); ++i) {
    const auto& e = settings.sni[i];
    auto b = build_context(settings, fmt::format("tls.sni[{}].", i), e.cert_file, e.key_file,
                           r.problems);
    if (b.context) {
      b.served.server_name = e.server_name;
      id->served_.push_back(b.served);
      id->contexts_.push_back(std::move(b.context));
      id->names_.push_back(e.server_name);
    }
  }
  if (!r.problems.empty()) {
    // Each context loads the client CA: say its problem once.
    std::vector<core::config_problem> once;
    for (auto& p : r.problems) {
      if (std::none_of(once.begin(), once.end(), [&](const core::config_problem& o) {
            return o.key == p.key && o.message == p.message;
          })) {
        once.push_back(std::move(p));
      }
    }
    r.problems = std::move(once);
    return r;
  }
  SSL_CTX* initial = id->contexts_.front()->native_handle();
  SSL_CTX_set_tlsext_servername_callback(initial, &tls_server_identity::on_server_name);
  SSL_CTX_set_tlsext_servername_arg(initial, id.get());
  r.value = std::move(id);
  return r;
}

}  // namespace nines::net
