// diagnose_chain on certificates made in memory, at an injected time: no sockets, no files.
#include "net/tls_diagnosis.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <memory>

#include "net/x509_text.hpp"

namespace nines::net {
namespace {

constexpr std::int64_t day = 86400;
constexpr std::int64_t t0 = 1'700'000'000;  // 2023-11-14T22:13:20Z: every leaf's not_before

using key_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using cert_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

key_ptr ec_key() {
  return {EVP_EC_gen("P-256"), EVP_PKEY_free};
}
key_ptr rsa_key(unsigned bits) {
  return {EVP_RSA_gen(bits), EVP_PKEY_free};
}

struct cert_spec {
  std::string cn = "localhost";
  int cn_type = MBSTRING_ASC;  // V_ASN1_T61STRING: any bytes, any length
  std::int64_t not_before = t0;
  std::int64_t not_after = t0 + 30 * day;
  bool ca = false;
  std::string san = "DNS:localhost,IP:127.0.0.1";  // "" for none
  std::string aia;                                 // caIssuers URL, "" for none
  const EVP_MD* md = EVP_sha256();
};

// A CA certificate's spec, valid from a year before t0 to ten years after unless told.
cert_spec ca_spec(const std::string& cn, std::int64_t not_after = t0 + 3650 * day) {
  cert_spec s;
  s.cn = cn;
  s.not_before = t0 - 365 * day;
  s.not_after = not_after;
  s.ca = true;
  s.san = "";
  return s;
}

// A leaf's spec, changed by `change`.
template <class Change>
cert_spec leaf_spec(Change change) {
  cert_spec s;
  change(s);
  return s;
}

void add_extension(X509* x, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  ASSERT_NE(ext, nullptr) << value;
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key` signed by `issuer` with `issuer_key` (itself when issuer is null).
cert_ptr make_cert(const cert_spec& s, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  cert_ptr x(X509_new(), X509_free);
  X509_set_version(x.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial++);
  X509_NAME* name = X509_get_subject_name(x.get());
  if (!s.cn.empty()) {
    X509_NAME_add_entry_by_NID(name, NID_commonName, s.cn_type,
                               reinterpret_cast<const unsigned char*>(s.cn.data()),
                               static_cast<int>(s.cn.size()), -1, 0);
  }
  X509* signer = issuer != nullptr ? issuer : x.get();
  X509_set_issuer_name(x.get(), X509_get_subject_name(signer));
  ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(s.not_before));
  ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(s.not_after));
  X509_set_pubkey(x.get(), key);
  add_extension(x.get(), signer, NID_subject_key_identifier, "hash");
  add_extension(x.get(), signer, NID_authority_key_identifier, "keyid");
  if (s.ca) {
    add_extension(x.get(), signer, NID_basic_constraints, "critical,CA:true");
    add_extension(x.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(x.get(), signer, NID_basic_constraints, "critical,CA:false");
    add_extension(x.get(), signer, NID_ext_key_usage, "serverAuth");
  }
  if (!s.san.empty()) {
    add_extension(x.get(), signer, NID_subject_alt_name, s.san);
  }
  if (!s.aia.empty()) {
    add_extension(x.get(), signer, NID_info_access, "caIssuers;URI:" + s.aia);
  }
  X509_sign(x.get(), issuer_key != nullptr ? issuer_key : key, s.md);
  return x;
}

struct stack_free {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // the certificates are borrowed
};
using borrowed_stack = std::unique_ptr<STACK_OF(X509), stack_free>;

borrowed_stack stack_of(std::initializer_list<X509*> certs) {
  borrowed_stack s(sk_X509_new_null());
  for (X509* c : certs) {
    sk_X509_push(s.get(), c);
  }
  return s;
}

// A root (in the store), an intermediate and a leaf for localhost and 127.0.0.1.
class tls_diagnosis_test : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = make_cert(ca_spec("test root"), root_key_.get(), nullptr, nullptr);
    int_ = make_cert(ca_spec("test intermediate"), int_key_.get(), root_.get(), root_key_.get());
    leaf_ = make_cert(leaf_spec([](cert_spec& s) { s.aia = "http://ca.test/int.der"; }),
                      leaf_key_.get(), int_.get(), int_key_.get());
    X509_STORE_add_cert(store_.get(), root_.get());
  }

  tls_diagnosis diagnose(std::initializer_list<X509*> sent, std::string_view host = "localhost",
                         std::int64_t now = t0 + day) {
    auto s = stack_of(sent);
    return diagnose_chain(s.get(), host, store_.get(), now);
  }

  static std::vector<std::string> codes(const tls_diagnosis& d) {
    std::vector<std::string> out;
    for (const auto& p : d.problems) {
      out.push_back(p.code);
    }
    return out;
  }

  key_ptr root_key_ = ec_key(), int_key_ = ec_key(), leaf_key_ = ec_key();
  cert_ptr root_{nullptr, X509_free}, int_{nullptr, X509_free}, leaf_{nullptr, X509_free};
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store_{X509_STORE_new(), X509_STORE_free};
};

TEST_F(tls_diagnosis_test, a_complete_chain_verifies_and_is_described_as_sent) {
  const auto d = diagnose({leaf_.get(), int_.get()});
  EXPECT_TRUE(d.verified) << summary(d);
  EXPECT_TRUE(d.problems.empty()) << summary(d);
  ASSERT_EQ(d.chain.size(), 2U);
  EXPECT_EQ(d.certificates_sent, 2U);
  EXPECT_EQ(d.chain[0].subject, "CN=localhost");
  EXPECT_EQ(d.chain[0].issuer, "CN=test intermediate");
  EXPECT_EQ(d.chain[0].not_before, t0);
  EXPECT_EQ(d.chain[0].not_after, t0 + 30 * day);
  EXPECT_EQ(d.chain[0].key, "EC P-256");
  EXPECT_EQ(d.chain[0].signature, "ecdsa-with-SHA256");
  EXPECT_EQ(d.chain[0].ca_issuers, "http://ca.test/int.der");
  EXPECT_EQ(d.chain[1].subject, "CN=test intermediate");
  EXPECT_EQ(d.chain[1].ca_issuers, "");
}

TEST_F(tls_diagnosis_test, dates_are_judged_at_the_injected_now) {
  const auto late = diagnose({leaf_.get(), int_.get()}, "localhost", t0 + 31 * day);
  EXPECT_FALSE(late.verified);
  EXPECT_EQ(codes(late), std::vector<std::string>{"expired"});
  EXPECT_EQ(late.problems[0].detail, "'CN=localhost' expired on 2023-12-14T22:13:20Z");

  const auto early = diagnose({leaf_.get(), int_.get()}, "localhost", t0 - 1);
  EXPECT_FALSE(early.verified);
  EXPECT_EQ(codes(early), std::vector<std::string>{"not_yet_valid"});
  EXPECT_EQ(early.problems[0].detail, "'CN=localhost' is not valid until 2023-11-14T22:13:20Z");

  // Five days and a second left: a warning, still verified.
  const auto soon = diagnose({leaf_.get(), int_.get()}, "localhost", t0 + 25 * day - 1);
  EXPECT_TRUE(soon.verified);
  EXPECT_EQ(codes(soon), std::vector<std::string>{"expires_soon"});
  EXPECT_EQ(soon.problems[0].detail,
            "the leaf 'CN=localhost' expires in 5 days, on 2023-12-14T22:13:20Z");
  // 14 days is the default: a second more is fine, a second less is not.
  EXPECT_TRUE(diagnose({leaf_.get(), int_.get()}, "localhost", t0 + 16 * day - 1).problems.empty());
  EXPECT_EQ(codes(diagnose({leaf_.get(), int_.get()}, "localhost", t0 + 16 * day + 1)),
            std::vector<std::string>{"expires_soon"});
  const auto hours = diagnose({leaf_.get(), int_.get()}, "localhost", t0 + 30 * day - 3600);
  EXPECT_NE(hours.problems.at(0).detail.find("expires in less than a day"), std::string::npos);

  // An expired intermediate is named too.
  auto old_int = make_cert(ca_spec("test intermediate", t0 - day), int_key_.get(), root_.get(),
                           root_key_.get());
  const auto d = diagnose({leaf_.get(), old_int.get()});
  EXPECT_EQ(codes(d), std::vector<std::string>{"expired"});
  EXPECT_EQ(d.problems[0].detail, "'CN=test intermediate' expired on 2023-11-13T22:13:20Z");
}

TEST_F(tls_diagnosis_test, hostname_mismatch_lists_the_names_for_dns_names_and_ip_literals) {
  const auto other = diagnose({leaf_.get(), int_.get()}, "other.test");
  EXPECT_FALSE(other.verified);
  EXPECT_EQ(codes(other), std::vector<std::string>{"hostname_mismatch"});
  EXPECT_EQ(other.problems[0].detail,
            "the leaf is for DNS:localhost, IP:127.0.0.1, not other.test");
  EXPECT_EQ(codes(diagnose({leaf_.get(), int_.get()}, "127.0.0.2")),
            std::vector<std::string>{"hostname_mismatch"});
  EXPECT_TRUE(diagnose({leaf_.get(), int_.get()}, "127.0.0.1").verified);
  EXPECT_TRUE(diagnose({leaf_.get(), int_.get()}, "").verified);  // no host: no check

  // The subject's CN is never a name (as browsers read certificates).
  auto cn_only = make_cert(leaf_spec([](cert_spec& s) { s.san = ""; }), leaf_key_.get(), int_.get(),
                           int_key_.get());
  const auto d = diagnose({cn_only.get(), int_.get()});
  EXPECT_EQ(codes(d), std::vector<std::string>{"hostname_mismatch"});
  EXPECT_EQ(d.problems[0].detail,
            "the leaf 'CN=localhost' has no subjectAltName for localhost (clients ignore the "
            "subject's CN)");
}

TEST_F(tls_diagnosis_test, a_missing_intermediate_names_the_url_the_leaf_gives_for_it) {
  const auto d = diagnose({leaf_.get()});
  EXPECT_FALSE(d.verified);
  EXPECT_EQ(codes(d), std::vector<std::string>{"missing_intermediate"});
  EXPECT_EQ(d.problems[0].detail,
            "the server sent no certificate for the leaf's issuer 'CN=test intermediate', nor "
            "does the trust store hold it: the leaf names it at http://ca.test/int.der");
}

TEST_F(tls_diagnosis_test, self_signed_and_untrusted_roots_are_told_apart) {
  auto self = make_cert(cert_spec{}, leaf_key_.get(), nullptr, nullptr);
  EXPECT_EQ(codes(diagnose({self.get()})), std::vector<std::string>{"self_signed"});
  X509_STORE_add_cert(store_.get(), self.get());
  EXPECT_TRUE(diagnose({self.get()}).verified);  // trusted as it is

  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> empty(X509_STORE_new(), X509_STORE_free);
  auto with_root = stack_of({leaf_.get(), int_.get(), root_.get()});
  const auto sent_root = diagnose_chain(with_root.get(), "localhost", empty.get(), t0 + day);
  EXPECT_EQ(codes(sent_root), std::vector<std::string>{"untrusted_root"});
  EXPECT_EQ(sent_root.problems[0].detail,
            "the chain ends at the self-signed 'CN=test root', which is not in the trust store");
  auto without_root = stack_of({leaf_.get(), int_.get()});
  const auto unsent_root = diagnose_chain(without_root.get(), "localhost", empty.get(), t0 + day);
  EXPECT_EQ(codes(unsent_root), std::vector<std::string>{"untrusted_root"});
  EXPECT_NE(unsent_root.problems[0].detail.find("whose issuer 'CN=test root' is not in the trust"),
            std::string::npos)
      << unsent_root.problems[0].detail;
}

TEST_F(tls_diagnosis_test, an_out_of_order_chain_still_verifies_with_a_warning) {
  const auto d = diagnose({leaf_.get(), root_.get(), int_.get()});
  EXPECT_TRUE(d.verified) << summary(d);
  EXPECT_EQ(codes(d), std::vector<std::string>{"chain_out_of_order"});
  EXPECT_EQ(d.problems[0].detail,
            "certificate 1 'CN=test root' is not the issuer of certificate 0 'CN=localhost' "
            "before it (send the leaf, then each issuer in turn)");
}

TEST_F(tls_diagnosis_test, weak_keys_and_sha1_signatures_fail_but_not_a_roots_own_signature) {
  auto rsa = rsa_key(1024);
  auto weak = make_cert(cert_spec{}, rsa.get(), int_.get(), int_key_.get());
  const auto k = diagnose({weak.get(), int_.get()});
  EXPECT_FALSE(k.verified);
  EXPECT_EQ(k.chain[0].key, "RSA 1024");
  EXPECT_EQ(codes(k), std::vector<std::string>{"weak_key"});

  auto sha1 = make_cert(leaf_spec([](cert_spec& s) { s.md = EVP_sha1(); }), leaf_key_.get(),
                        int_.get(), int_key_.get());
  const auto s = diagnose({sha1.get(), int_.get()});
  EXPECT_FALSE(s.verified);
  EXPECT_EQ(s.chain[0].signature, "ecdsa-with-SHA1");
  EXPECT_EQ(codes(s), std::vector<std::string>{"weak_signature"});

  auto sha1_root_spec = ca_spec("test root");
  sha1_root_spec.md = EVP_sha1();
  auto sha1_root = make_cert(sha1_root_spec, root_key_.get(), nullptr, nullptr);
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  X509_STORE_add_cert(store.get(), sha1_root.get());
  auto sent = stack_of({leaf_.get(), int_.get()});
  EXPECT_TRUE(diagnose_chain(sent.get(), "localhost", store.get(), t0 + day).verified);
}

TEST_F(tls_diagnosis_test, odd_certificates_are_described_within_bounds) {
  // No subject, no extensions at all, a huge CN with control and non-ASCII bytes.
  cert_ptr bare(X509_new(), X509_free);
  X509_set_pubkey(bare.get(), leaf_key_.get());
  X509_sign(bare.get(), leaf_key_.get(), EVP_sha256());
  const auto b = diagnose({bare.get()});
  EXPECT_FALSE(b.verified);
  ASSERT_EQ(b.chain.size(), 1U);
  EXPECT_EQ(b.chain[0].subject, "");
  EXPECT_EQ(b.chain[0].ca_issuers, "");

  std::string huge(5000, 'a');
  huge[10] = '\n';
  huge[11] = '\x1b';
  huge[12] = '\xff';
  auto loud = make_cert(leaf_spec([&](cert_spec& s) {
                          s.cn = huge;
                          s.cn_type = V_ASN1_T61STRING;
                        }),
                        leaf_key_.get(), int_.get(), int_key_.get());
  const auto l = diagnose({loud.get(), int_.get()});
  ASSERT_EQ(l.chain.size(), 2U);
  EXPECT_EQ(l.chain[0].subject.size(), max_certificate_text + 3);  // cut, "..." added
  // Escaped: \n, ESC, and 0xff (Latin-1 in a T61String) as its two UTF-8 bytes.
  EXPECT_EQ(l.chain[0].subject.substr(0, 25), "CN=aaaaaaaaaa\\0A\\1B\\C3\\BF");
  for (const char c : l.chain[0].subject) {
    EXPECT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(c);
  }
}

TEST_F(tls_diagnosis_test, at_most_max_chain_certificates_are_examined) {
  std::vector<X509*> many{leaf_.get()};
  for (int i = 0; i < 30; ++i) {
    many.push_back(int_.get());
  }
  borrowed_stack s(sk_X509_new_null());
  for (X509* c : many) {
    sk_X509_push(s.get(), c);
  }
  const auto d = diagnose_chain(s.get(), "localhost", store_.get(), t0 + day);
  EXPECT_EQ(d.certificates_sent, 31U);
  EXPECT_EQ(d.chain.size(), max_chain_certificates);
  EXPECT_TRUE(d.verified) << summary(d);
  EXPECT_EQ(codes(d), std::vector<std::string>{"chain_out_of_order"});
}

TEST(tls_diagnosis, no_certificate_is_handshake_failed) {
  const auto none = diagnose_chain(nullptr, "localhost", nullptr, t0);
  EXPECT_FALSE(none.verified);
  ASSERT_EQ(none.problems.size(), 1U);
  EXPECT_EQ(none.problems[0].code, "handshake_failed");
  borrowed_stack empty(sk_X509_new_null());
  EXPECT_FALSE(diagnose_chain(empty.get(), "localhost", nullptr, t0).verified);
}

TEST(tls_diagnosis, summary_puts_each_code_before_its_detail) {
  tls_diagnosis d;
  d.verified = true;
  EXPECT_EQ(summary(d), "");
  add_problem(d, "expires_soon", "the leaf expires in 3 days");
  EXPECT_TRUE(d.verified);  // a warning
  add_problem(d, "missing_intermediate", "the server sent no certificate for the leaf's issuer");
  EXPECT_FALSE(d.verified);
  add_problem(d, "expired", "'CN=a' expired on 2020-01-01T00:00:00Z");
  add_problem(d, "expired", "'CN=b' expired on 2020-02-01T00:00:00Z");  // joins the first
  add_problem(d, "expired", "'CN=b' expired on 2020-02-01T00:00:00Z");  // said already
  EXPECT_EQ(summary(d),
            "expires_soon: the leaf expires in 3 days; missing_intermediate: the server sent no "
            "certificate for the leaf's issuer; expired: 'CN=a' expired on 2020-01-01T00:00:00Z, "
            "'CN=b' expired on 2020-02-01T00:00:00Z");
  EXPECT_TRUE(is_warning("chain_out_of_order"));
  EXPECT_FALSE(is_warning("weak_key"));
}

}  // namespace
}  // namespace nines::net
