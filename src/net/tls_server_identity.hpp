#pragma once
// What the API listener presents over TLS ([tls] in docs/config.md): a default certificate, one
// per SNI name, the client CA for mTLS, and the protocol policy (TLS 1.2 and 1.3 only, forward-
// secret AEAD ciphers, ALPN http/1.1). Built whole from the files, then immutable: a reload builds
// a new identity and swaps it in (tls_server_store), connections keep the one they shook hands
// with, so that nothing in flight notices.
//
// Threading: an identity is shared by every worker; OpenSSL's SSL_CTX is safe to use from several
// threads once built.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "core/config/config.hpp"
#include "core/config/config_problem.hpp"
#include "net/asio.hpp"

namespace nines::net {

// A certificate the listener serves, for metrics and the log.
struct served_certificate {
  std::string server_name;  // "" for the default certificate
  std::string subject;      // the leaf's subject, one line
  std::int64_t not_after = 0;  // Unix seconds
  std::string cert_file;
};

class tls_server_identity {
 public:
  struct load_result {
    std::shared_ptr<const tls_server_identity> value;  // set when problems is empty
    std::vector<core::config_problem> problems;        // each names its key and file
  };
  // Reads every file `settings` names. A certificate that does not parse, a key that does not
  // match it (or is encrypted), a leaf that expired or is not valid yet, a client CA file without
  // certificates: each is a problem, and nothing is built.
  static load_result load(const core::tls_listener_settings& settings);

  // The context a connection starts with; the SNI callback moves it to its name's context.
  asio::ssl::context& initial_context() const { return *contexts_.front(); }
  const std::vector<served_certificate>& certificates() const { return served_; }
  bool requires_client_certificate() const { return mtls_; }

  tls_server_identity(const tls_server_identity&) = delete;
  tls_server_identity& operator=(const tls_server_identity&) = delete;
  ~tls_server_identity();

 private:
  tls_server_identity() = default;
  static int on_server_name(SSL* ssl, int* alert, void* self);

  // contexts_[0] is the default; contexts_[i + 1] serves names_[i].
  std::vector<std::unique_ptr<asio::ssl::context>> contexts_;
  std::vector<std::string> names_;  // lower case; "*.example.com" matches one label
  std::vector<served_certificate> served_;
  bool mtls_ = false;
};

// The identity new connections get; swapped whole on reload (any thread).
class tls_server_store {
 public:
  explicit tls_server_store(std::shared_ptr<const tls_server_identity> first)
      : current_(std::move(first)) {}
  std::shared_ptr<const tls_server_identity> current() const { return current_.load(); }
  void replace(std::shared_ptr<const tls_server_identity> next) { current_.store(std::move(next)); }

 private:
  std::atomic<std::shared_ptr<const tls_server_identity>> current_;
};

// The name `host` selects among `patterns` (lower case; exact first, then "*.rest" for one label
// before "rest"); -1 for none. Exposed for tests.
int match_server_name(const std::vector<std::string>& patterns, std::string_view host);

}  // namespace nines::net
