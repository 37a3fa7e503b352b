#include "net/tls_diagnosis.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

#include "net/x509_text.hpp"

namespace nines::net {
namespace {

constexpr std::int64_t seconds_per_day = 86400;
constexpr std::size_t max_verify_errors = 64;

struct x509_stack_free {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using owned_x509_stack = std::unique_ptr<STACK_OF(X509), x509_stack_free>;
using owned_store = std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)>;
using owned_store_ctx = std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)>;

// One error X509_verify_cert met, with the certificate it was about.
struct verify_error {
  int code = 0;
  int depth = 0;
  std::string subject;
};

int verify_errors_index() {
  static const int index = X509_STORE_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// Records each error and lets verification go on, so that one run finds all of them.
int collect_verify_error(int ok, X509_STORE_CTX* ctx) {
  if (ok == 0) {
    auto* errors = static_cast<std::vector<verify_error>*>(
        X509_STORE_CTX_get_ex_data(ctx, verify_errors_index()));
    if (errors != nullptr && errors->size() < max_verify_errors) {
      const X509* cert = X509_STORE_CTX_get_current_cert(ctx);
      errors->push_back({X509_STORE_CTX_get_error(ctx), X509_STORE_CTX_get_error_depth(ctx),
                         cert != nullptr ? name_text(X509_get_subject_name(cert)) : ""});
    }
  }
  return 1;
}

std::string quoted_subject(const X509* x) {
  return "'" + name_text(X509_get_subject_name(x)) + "'";
}

bool is_ip_literal(const std::string& host) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(host.c_str());
  const bool literal = ip != nullptr;
  ASN1_OCTET_STRING_free(ip);
  return literal;
}

// Whether the leaf names `host`, as a browser reads it: subjectAltName only (never the subject's
// CN), wildcards for a whole left-most label only.
bool names_host(X509* leaf, const std::string& host) {
  if (host.find('\0') != std::string::npos) {
    return false;
  }
  if (is_ip_literal(host)) {
    return X509_check_ip_asc(leaf, host.c_str(), 0) == 1;
  }
  return X509_check_host(leaf, host.data(), host.size(),
                         X509_CHECK_FLAG_NEVER_CHECK_SUBJECT | X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                         nullptr) == 1;
}

bool self_issued(X509* x) {
  return X509_self_signed(x, 0) == 1;
}

tls_chain_entry describe(X509* x) {
  tls_chain_entry e;
  e.subject = name_text(X509_get_subject_name(x));
  e.issuer = name_text(X509_get_issuer_name(x));
  e.not_before = unix_time(X509_get0_notBefore(x));
  e.not_after = unix_time(X509_get0_notAfter(x));
  e.key = public_key_text(x).text;
  e.signature = signature_text(x).text;
  e.ca_issuers = ca_issuers_url(x);
  return e;
}

bool is_chain_building_error(int code) {
  switch (code) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return true;
    default:
      return false;
  }
}

// Problems in the order a person should fix them: the chain, the dates, the name, the strength.
class chain_classifier {
 public:
  chain_classifier(tls_diagnosis& d, STACK_OF(X509) * sent, std::size_t examined,
                   STACK_OF(X509) * path, std::int64_t now)
      : d_(d), sent_(sent), examined_(examined), path_(path), now_(now) {}

  void chain_errors(const std::vector<verify_error>& errors) {
    X509* leaf = sk_X509_value(sent_, 0);
    for (const auto& e : errors) {
      switch (e.code) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
          if (e.depth == 0 && !self_issued(leaf)) {
            missing_intermediate(leaf);
          } else {
            add_problem(d_, "untrusted_root",
                        fmt::format("the chain ends at '{}', whose issuer '{}' is not in the trust "
                                    "store (an untrusted root, or an intermediate the server did "
                                    "not send)",
                                    e.subject, issuer_of_depth(e.depth)));
          }
          break;
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
          add_problem(d_, "self_signed",
                      fmt::format("the leaf {} is signed by itself and is not in the trust store",
                                  quoted_subject(leaf)));
          break;
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
          add_problem(d_, "untrusted_root",
                      fmt::format("the chain ends at the self-signed '{}', which is not in the "
                                  "trust store",
                                  e.subject));
          break;
        case X509_V_ERR_CERT_UNTRUSTED:
        case X509_V_ERR_CERT_REJECTED:
          add_problem(d_, "untrusted_root",
                      fmt::format("the trust store does not trust '{}' for servers", e.subject));
          break;
        // Found by the checks below, with their own words.
        case X509_V_ERR_CERT_NOT_YET_VALID:
        case X509_V_ERR_CERT_HAS_EXPIRED:
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
        case X509_V_ERR_EE_KEY_TOO_SMALL:
        case X509_V_ERR_CA_KEY_TOO_SMALL:
        case X509_V_ERR_CA_MD_TOO_WEAK:
          break;
        default:
          add_problem(d_, "verify_failed",
                      fmt::format("'{}' (depth {}): {}", e.subject, e.depth,
                                  e.code == X509_V_OK ? "verification failed"
                                                      : X509_verify_cert_error_string(e.code)));
      }
    }
    const bool complete = std::none_of(errors.begin(), errors.end(), [](const verify_error& e) {
      return is_chain_building_error(e.code);
    });
    if (complete) {
      order();
    }
  }

  void dates() {
    for (int i = 0; i < sk_X509_num(path_); ++i) {
      const X509* x = sk_X509_value(path_, i);
      const auto not_before = unix_time(X509_get0_notBefore(x));
      const auto not_after = unix_time(X509_get0_notAfter(x));
      if (not_after != 0 && now_ > not_after) {
        add_problem(d_, "expired",
                    fmt::format("{} expired on {}", quoted_subject(x), rfc3339(not_after)));
      } else if (not_before != 0 && now_ < not_before) {
        add_problem(
            d_, "not_yet_valid",
            fmt::format("{} is not valid until {}", quoted_subject(x), rfc3339(not_before)));
      }
    }
  }

  void host(std::string_view host) {
    X509* leaf = sk_X509_value(sent_, 0);
    const std::string name(host);
    if (name.empty() || names_host(leaf, name)) {
      return;
    }
    const auto names = subject_alt_names(leaf);
    add_problem(d_, "hostname_mismatch",
                names.empty()
                    ? fmt::format("the leaf {} has no subjectAltName for {} (clients ignore the "
                                  "subject's CN)",
                                  quoted_subject(leaf), printable(name))
                    : fmt::format("the leaf is for {}, not {}", names, printable(name)));
  }

  void strength() {
    for (int i = 0; i < sk_X509_num(path_); ++i) {
      X509* x = sk_X509_value(path_, i);
      if (const auto key = public_key_text(x); key.weak) {
        add_problem(d_, "weak_key",
                    fmt::format("{} has key {} (RSA and DSA need 2048 bits or more, EC 256)",
                                quoted_subject(x), key.text));
      }
      // A root's signature on itself proves nothing and is checked by no one.
      if (const auto signature = signature_text(x); signature.weak && !self_issued(x)) {
        add_problem(d_, "weak_signature",
                    fmt::format("{} is signed with {} (SHA-1 and MD5 signatures can be forged)",
                                quoted_subject(x), signature.text));
      }
    }
  }

  void lifetime(int soon_days) {
    const X509* leaf = sk_X509_value(sent_, 0);
    const auto not_after = unix_time(X509_get0_notAfter(leaf));
    const auto left = not_after - now_;
    if (soon_days <= 0 || not_after == 0 || left < 0 || left >= soon_days * seconds_per_day) {
      return;
    }
    const auto days = (left + seconds_per_day / 2) / seconds_per_day;  // the nearest
    const auto when = days == 0   ? std::string("in less than a day")
                      : days == 1 ? std::string("in 1 day")
                                  : fmt::format("in {} days", days);
    add_problem(d_, "expires_soon",
                fmt::format("the leaf {} expires {}, on {}", quoted_subject(leaf), when,
                            rfc3339(not_after)));
  }

 private:
  void missing_intermediate(const X509* leaf) {
    const auto url = ca_issuers_url(leaf);
    add_problem(
        d_, "missing_intermediate",
        fmt::format("the server sent no certificate for the leaf's issuer '{}', nor does the "
                    "trust store hold it: {}",
                    name_text(X509_get_issuer_name(leaf)),
                    url.empty() ? "the leaf names no caIssuers URL for it"
                                : "the leaf names it at " + url));
  }

  std::string issuer_of_depth(int depth) const {
    const X509* x =
        depth >= 0 && depth < sk_X509_num(path_) ? sk_X509_value(path_, depth) : nullptr;
    return x != nullptr ? name_text(X509_get_issuer_name(x)) : "";
  }

  // Each certificate after the leaf should issue the one before it (RFC 8446 §4.4.2: SHOULD;
  // clients should cope with any order, but older ones and some libraries do not).
  void order() {
    for (std::size_t i = 1; i < examined_; ++i) {
      X509* issuer = sk_X509_value(sent_, static_cast<int>(i));
      X509* subject = sk_X509_value(sent_, static_cast<int>(i - 1));
      if (issuer != nullptr && subject != nullptr &&
          X509_check_issued(issuer, subject) != X509_V_OK) {
        add_problem(d_, "chain_out_of_order",
                    fmt::format("certificate {} {} is not the issuer of certificate {} {} before "
                                "it (send the leaf, then each issuer in turn)",
                                i, quoted_subject(issuer), i - 1, quoted_subject(subject)));
        return;
      }
    }
  }

  tls_diagnosis& d_;
  STACK_OF(X509) * sent_;
  std::size_t examined_;
  STACK_OF(X509) * path_;
  std::int64_t now_;
};

}  // namespace

bool is_warning(std::string_view code) {
  return code == "expires_soon" || code == "chain_out_of_order";
}

void add_problem(tls_diagnosis& d, std::string_view code, std::string_view detail) {
  auto same = std::find_if(d.problems.begin(), d.problems.end(),
                           [&](const tls_problem& p) { return p.code == code; });
  if (same == d.problems.end()) {
    d.problems.push_back({std::string(code), std::string(detail)});
  } else if (same->detail.find(detail) == std::string::npos) {
    same->detail += ", ";
    same->detail += detail;
  }
  if (!is_warning(code)) {
    d.verified = false;
  }
}

tls_diagnosis diagnose_chain(STACK_OF(X509) * sent, std::string_view host, X509_STORE* trust,
                             std::int64_t now, int soon_days) {
  tls_diagnosis d;
  d.certificates_sent = sent != nullptr ? static_cast<std::size_t>(sk_X509_num(sent)) : 0;
  if (d.certificates_sent == 0 || sk_X509_value(sent, 0) == nullptr) {
    add_problem(d, "handshake_failed", "the server sent no certificate");
    return d;
  }
  const auto examined = std::min(d.certificates_sent, max_chain_certificates);
  owned_x509_stack untrusted(sk_X509_new_null());
  for (std::size_t i = 0; i < examined; ++i) {
    X509* x = sk_X509_value(sent, static_cast<int>(i));
    if (x == nullptr) {
      continue;
    }
    d.chain.push_back(describe(x));
    if (untrusted) {
      X509_up_ref(x);
      if (sk_X509_push(untrusted.get(), x) == 0) {
        X509_free(x);
      }
    }
  }
  d.verified = true;

  owned_store defaults(nullptr, X509_STORE_free);
  if (trust == nullptr) {
    defaults.reset(X509_STORE_new());
    if (defaults) {
      X509_STORE_set_default_paths(defaults.get());
    }
    trust = defaults.get();
  }
  X509* leaf = sk_X509_value(sent, 0);
  std::vector<verify_error> errors;
  owned_store_ctx ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  if (!ctx || trust == nullptr || !untrusted ||
      X509_STORE_CTX_init(ctx.get(), trust, leaf, untrusted.get()) != 1) {
    add_problem(d, "verify_failed", "cannot set up verification (out of memory?)");
    ERR_clear_error();
    return d;
  }
  X509_STORE_CTX_set_ex_data(ctx.get(), verify_errors_index(), &errors);
  X509_STORE_CTX_set_verify_cb(ctx.get(), collect_verify_error);
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_depth(param, static_cast<int>(max_chain_certificates));
  // Dates are checked below against `now`, on every certificate of the path, in plain words.
  X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);
  if (X509_verify_cert(ctx.get()) != 1 && errors.empty()) {
    errors.push_back(
        {X509_STORE_CTX_get_error(ctx.get()), 0, name_text(X509_get_subject_name(leaf))});
  }
  // The path verification built (leaf first), as far as it got; the leaf alone if none.
  owned_x509_stack path(X509_STORE_CTX_get1_chain(ctx.get()));
  if (!path || sk_X509_num(path.get()) == 0) {
    path.reset(sk_X509_new_null());
    if (path && X509_up_ref(leaf) == 1 && sk_X509_push(path.get(), leaf) == 0) {
      X509_free(leaf);
    }
  }
  if (path) {
    chain_classifier classify(d, sent, examined, path.get(), now);
    classify.chain_errors(errors);
    classify.dates();
    classify.host(host);
    classify.strength();
    classify.lifetime(soon_days);
  }
  ERR_clear_error();
  return d;
}

std::string summary(const tls_diagnosis& d) {
  std::string out;
  for (const auto& p : d.problems) {
    if (!out.empty()) {
      out += "; ";
    }
    out += p.code + ": " + p.detail;
  }
  return out;
}

}  // namespace nines::net
