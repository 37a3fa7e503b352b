#include "tools/tls_check.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <CLI/CLI.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>

#include "net/asio.hpp"
#include "net/spawn.hpp"
#include "net/tls_diagnosis.hpp"
#include "net/x509_text.hpp"

namespace nines::tools {
namespace {

using namespace net;
namespace json = boost::json;
namespace ssl = asio::ssl;

constexpr int exit_verified = 0;
constexpr int exit_not_verified = 1;
constexpr int exit_bad_usage = 2;

struct endpoint {
  std::string host;  // without brackets
  std::string port;
};

std::optional<endpoint> parse_target(const std::string& text, std::string& why) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    why = "the target must be HOST:PORT (or [IPv6]:PORT)";
    return std::nullopt;
  }
  endpoint e{text.substr(0, colon), text.substr(colon + 1)};
  if (e.host.front() == '[') {
    if (e.host.size() < 3 || e.host.back() != ']') {
      why = "an IPv6 address must be in brackets: [::1]:443";
      return std::nullopt;
    }
    e.host = e.host.substr(1, e.host.size() - 2);
  } else if (e.host.find(':') != std::string::npos) {
    why = "an IPv6 address must be in brackets: [::1]:443";
    return std::nullopt;
  }
  const bool digits =
      e.port.size() <= 5 && e.port.find_first_not_of("0123456789") == std::string::npos;
  if (!digits || std::stoi(e.port) < 1 || std::stoi(e.port) > 65535) {
    why = "the port must be a number from 1 to 65535";
    return std::nullopt;
  }
  if (e.host.size() > 253) {
    why = "the host name is longer than 253 characters";
    return std::nullopt;
  }
  return e;
}

bool is_ip_address(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

using owned_store = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;

// The roots of --ca; nullptr with `why` when the file cannot be read or holds no certificate.
owned_store load_trust(const std::string& path, std::string& why) {
  owned_store store(nullptr, X509_STORE_free);
  if (!std::ifstream(path)) {
    why = fmt::format("cannot read --ca {}: {}", path, std::strerror(errno));
    return store;
  }
  store.reset(X509_STORE_new());
  if (!store || X509_STORE_load_file(store.get(), path.c_str()) != 1 ||
      sk_X509_OBJECT_num(X509_STORE_get0_objects(store.get())) == 0) {
    why = fmt::format("--ca {} holds no PEM certificate", path);
    ERR_clear_error();
    store.reset();
  }
  return store;
}

// A client that accepts anything, to see everything: verification is ours, afterwards.
std::unique_ptr<ssl::context> make_inspecting_context() {
  auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = context->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(native, 0);
  SSL_CTX_set_cipher_list(native, "DEFAULT@SECLEVEL=0");
  SSL_CTX_set_security_level(native, 0);
  // Servers without secure renegotiation (RFC 5746) are old, not dangerous to look at.
  SSL_CTX_set_options(native, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  static constexpr unsigned char alpn[] = "\x02h2\x08http/1.1";
  SSL_CTX_set_alpn_protos(native, alpn, sizeof alpn - 1);
  return context;
}

// Why a handshake failed, in the words of the alert or of OpenSSL.
std::string handshake_failure(const error_code& ec) {
  if (ec == beast::error::timeout) {
    return "no handshake before the deadline";
  }
  if (ec == ssl::error::stream_truncated || ec == asio::error::eof) {
    return "the server closed the connection during the handshake";
  }
  if (ec.category() != asio::error::get_ssl_category()) {
    return ec.message();
  }
  const auto code = static_cast<unsigned long>(ec.value());
  const char* reason = ERR_reason_error_string(code);
  std::string out = reason != nullptr ? reason : ec.message();
  if (ERR_GET_REASON(code) == SSL_R_WRONG_VERSION_NUMBER) {
    out += " (the server does not speak TLS on this port, or only SSL 3 or older)";
  }
  return out;
}

struct check_result {
  tls_diagnosis diagnosis;
  bool finished = false;
};

// `trust`, `context` and `out` outlive the io_context this runs on.
awaitable<void> check(endpoint target, std::string servername, X509_STORE* trust,
                      ssl::context& context, std::chrono::steady_clock::time_point deadline,
                      check_result& out) {
  auto executor = co_await asio::this_coro::executor;
  beast::ssl_stream<beast::tcp_stream> stream(executor, context);
  auto& low = beast::get_lowest_layer(stream);
  low.expires_at(deadline);
  tcp::resolver resolver(executor);
  auto [rec, results] = co_await resolver.async_resolve(target.host, target.port, use_nothrow);
  if (rec) {
    add_problem(out.diagnosis, "handshake_failed",
                fmt::format("cannot resolve {}: {}", target.host, rec.message()));
    out.finished = true;
    co_return;
  }
  auto [cec, ep] = co_await low.async_connect(results, use_nothrow);
  if (cec) {
    add_problem(out.diagnosis, "handshake_failed",
                fmt::format("cannot connect: {}", cec == beast::error::timeout
                                                      ? "no connection before the deadline"
                                                      : cec.message()));
    out.finished = true;
    co_return;
  }
  if (!is_ip_address(servername)) {
    SSL_set_tlsext_host_name(stream.native_handle(), servername.c_str());
  }
  ERR_clear_error();
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_nothrow);
  if (hec) {
    add_problem(out.diagnosis, "handshake_failed", handshake_failure(hec));
    ERR_clear_error();
    out.finished = true;
    co_return;
  }
  SSL* native = stream.native_handle();
  out.diagnosis = diagnose_chain(SSL_get_peer_cert_chain(native), servername, trust,
                                 static_cast<std::int64_t>(std::time(nullptr)));
  out.diagnosis.protocol = SSL_get_version(native);
  out.diagnosis.cipher = SSL_get_cipher_name(native);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_length = 0;
  SSL_get0_alpn_selected(native, &alpn, &alpn_length);
  out.diagnosis.alpn = printable({reinterpret_cast<const char*>(alpn), alpn_length});
  if (SSL_version(native) < TLS1_2_VERSION) {
    add_problem(
        out.diagnosis, "protocol_too_old",
        fmt::format("the server chose {}; clients need TLS 1.2 or newer", out.diagnosis.protocol));
  }
  out.finished = true;
  error_code ignored;
  low.socket().close(ignored);
}

void print_text(const tls_check_options& o, const std::string& servername, const tls_diagnosis& d) {
  std::cout << "target      " << o.target << " (servername " << servername << ")\n";
  if (!d.protocol.empty()) {
    std::cout << "protocol    " << d.protocol << "\ncipher      " << d.cipher << "\nalpn        "
              << (d.alpn.empty() ? "(none)" : d.alpn) << "\n";
    std::cout << "chain as sent (" << d.certificates_sent << " certificate"
              << (d.certificates_sent == 1 ? "" : "s")
              << (d.chain.size() < d.certificates_sent
                      ? fmt::format(", the first {} shown", d.chain.size())
                      : "")
              << "):\n";
  }
  for (std::size_t i = 0; i < d.chain.size(); ++i) {
    const auto& c = d.chain[i];
    std::cout << fmt::format("  {} subject    {}\n", i, c.subject)
              << fmt::format("    issuer     {}\n", c.issuer)
              << fmt::format("    valid      {} to {}\n", rfc3339(c.not_before),
                             rfc3339(c.not_after))
              << fmt::format("    key        {}\n", c.key)
              << fmt::format("    signature  {}\n", c.signature);
    if (!c.ca_issuers.empty()) {
      std::cout << fmt::format("    ca issuers {}\n", c.ca_issuers);
    }
  }
  std::cout << "verdict: " << (d.verified ? "verified" : "NOT verified") << "\n";
  for (const auto& p : d.problems) {
    std::cout << "  " << p.code << ": " << p.detail << "\n";
  }
}

void print_json(const tls_check_options& o, const std::string& servername, const tls_diagnosis& d) {
  json::array chain;
  for (const auto& c : d.chain) {
    chain.push_back(json::object{{"subject", c.subject},
                                 {"issuer", c.issuer},
                                 {"not_before", rfc3339(c.not_before)},
                                 {"not_after", rfc3339(c.not_after)},
                                 {"key", c.key},
                                 {"signature", c.signature},
                                 {"ca_issuers", c.ca_issuers}});
  }
  json::array problems;
  for (const auto& p : d.problems) {
    problems.push_back(json::object{{"code", p.code}, {"detail", p.detail}});
  }
  std::cout << json::serialize(json::object{{"target", o.target},
                                            {"servername", servername},
                                            {"verified", d.verified},
                                            {"protocol", d.protocol},
                                            {"cipher", d.cipher},
                                            {"alpn", d.alpn},
                                            {"certificates_sent", d.certificates_sent},
                                            {"chain", std::move(chain)},
                                            {"problems", std::move(problems)}})
            << "\n";
}

}  // namespace

void add_tls_check_options(CLI::App& app, tls_check_options& o) {
  // Not ->required(): a missing target is bad usage (exit code 2), as a malformed one is.
  app.add_option("target", o.target, "HOST:PORT (or [IPv6]:PORT)");
  app.add_option("--servername", o.servername,
                 "the name to send as SNI and check the certificate for (default: HOST)");
  app.add_option("--ca", o.ca_file, "PEM file of the roots to trust (default: the system's)");
  app.add_flag("--json", o.json, "print one JSON object instead of text");
  app.add_option("--timeout-ms", o.timeout_ms, "time for connect and handshake together")
      ->check(CLI::Range(1, 60000));
}

int run_tls_check(const tls_check_options& o) {
  if (o.target.empty()) {
    std::cerr << "nines tls-check: the target HOST:PORT is required\n";
    return exit_bad_usage;
  }
  std::string why;
  const auto target = parse_target(o.target, why);
  if (!target) {
    std::cerr << "nines tls-check: " << o.target << ": " << why << "\n";
    return exit_bad_usage;
  }
  owned_store trust(nullptr, X509_STORE_free);
  if (!o.ca_file.empty()) {
    trust = load_trust(o.ca_file, why);
    if (!trust) {
      std::cerr << "nines tls-check: " << why << "\n";
      return exit_bad_usage;
    }
  }
  const std::string servername = o.servername.empty() ? target->host : o.servername;
  auto context = make_inspecting_context();
  check_result result;
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  {
    asio::io_context ctx;
    spawn(ctx.get_executor(),
          check(*target, servername, trust.get(), *context,
                std::chrono::steady_clock::now() + timeout, result),
          "tls-check");
    // The stream's deadline bounds connect and handshake; this bounds the rest (resolving).
    ctx.run_for(timeout + std::chrono::seconds(1));
  }
  if (!result.finished) {  // still resolving, or (a bug) ended by an exception, logged
    result.diagnosis = {};
    add_problem(result.diagnosis, "handshake_failed", "no handshake before the deadline");
  }
  if (o.json) {
    print_json(o, servername, result.diagnosis);
  } else {
    print_text(o, servername, result.diagnosis);
  }
  return result.diagnosis.verified ? exit_verified : exit_not_verified;
}

}  // namespace nines::tools
