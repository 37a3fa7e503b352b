#include "net/x509_text.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <memory>

namespace nines::net {
namespace {

std::string asn1_text(const ASN1_STRING* s) {
  if (s == nullptr) {
    return {};
  }
  return printable({reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                    static_cast<std::size_t>(std::max(0, ASN1_STRING_length(s)))});
}

std::string ip_text(const ASN1_OCTET_STRING* ip) {
  std::array<char, INET6_ADDRSTRLEN> text{};
  const int length = ASN1_STRING_length(ip);
  const auto* bytes = ASN1_STRING_get0_data(ip);
  if ((length == 4 && inet_ntop(AF_INET, bytes, text.data(), text.size()) != nullptr) ||
      (length == 16 && inet_ntop(AF_INET6, bytes, text.data(), text.size()) != nullptr)) {
    return text.data();
  }
  return "?";
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  const std::size_t keep = std::min(text.size(), max_certificate_text);
  out.reserve(keep + 3);
  for (std::size_t i = 0; i < keep; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?';
  }
  if (text.size() > keep) {
    out += "...";
  }
  return out;
}

std::string name_text(const X509_NAME* name) {
  if (name == nullptr) {
    return {};
  }
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    return {};
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return n > 0 ? printable({data, static_cast<std::size_t>(n)}) : std::string();
}

std::int64_t unix_time(const ASN1_TIME* time) {
  struct tm tm {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    return 0;
  }
  return static_cast<std::int64_t>(::timegm(&tm));
}

std::string rfc3339(std::int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  struct tm utc {};
  if (::gmtime_r(&t, &utc) == nullptr) {
    return {};
  }
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

key_description public_key_text(const X509* x) {
  EVP_PKEY* key = X509_get0_pubkey(x);
  if (key == nullptr) {
    return {"unknown", false};
  }
  const int bits = EVP_PKEY_get_bits(key);
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return {fmt::format("RSA {}", bits), bits < 2048};
    case EVP_PKEY_RSA_PSS:
      return {fmt::format("RSA-PSS {}", bits), bits < 2048};
    case EVP_PKEY_DSA:
      return {fmt::format("DSA {}", bits), bits < 2048};
    case EVP_PKEY_EC: {
      std::array<char, 80> group{};
      std::size_t length = 0;
      if (EVP_PKEY_get_group_name(key, group.data(), group.size(), &length) != 1) {
        return {fmt::format("EC {}", bits), bits < 256};
      }
      const char* nist = EC_curve_nid2nist(OBJ_sn2nid(group.data()));
      return {"EC " + printable(nist != nullptr ? nist : group.data()), bits < 256};
    }
    case EVP_PKEY_ED25519:
      return {"Ed25519", false};
    case EVP_PKEY_ED448:
      return {"Ed448", false};
    default: {
      const char* name = OBJ_nid2sn(EVP_PKEY_get_base_id(key));
      return {fmt::format("{} {}", name != nullptr ? printable(name) : "unknown", bits), false};
    }
  }
}

signature_description signature_text(X509* x) {
  signature_description out;
  int digest = NID_undef;
  int key_type = NID_undef;
  if (X509_get_signature_info(x, &digest, &key_type, nullptr, nullptr) != 1) {
    OBJ_find_sigid_algs(X509_get_signature_nid(x), &digest, &key_type);
  }
  out.weak = digest == NID_sha1 || digest == NID_md5 || digest == NID_md5_sha1 ||
             digest == NID_md4 || digest == NID_md2 || digest == NID_mdc2;
  const X509_ALGOR* algorithm = nullptr;
  X509_get0_signature(nullptr, &algorithm, x);
  const ASN1_OBJECT* oid = nullptr;
  if (algorithm != nullptr) {
    X509_ALGOR_get0(&oid, nullptr, nullptr, algorithm);
  }
  std::array<char, 128> text{};
  if (oid == nullptr) {
    out.text = "unknown";
  } else if (const int nid = OBJ_obj2nid(oid); nid != NID_undef) {
    out.text = printable(OBJ_nid2ln(nid));
  } else {
    out.text = OBJ_obj2txt(text.data(), static_cast<int>(text.size()), oid, 1) > 0
                   ? printable(text.data())
                   : "unknown";
  }
  return out;
}

std::string ca_issuers_url(const X509* x) {
  auto* access =
      static_cast<AUTHORITY_INFO_ACCESS*>(X509_get_ext_d2i(x, NID_info_access, nullptr, nullptr));
  if (access == nullptr) {
    return {};
  }
  std::string url;
  for (int i = 0; i < sk_ACCESS_DESCRIPTION_num(access) && url.empty(); ++i) {
    const ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(access, i);
    if (OBJ_obj2nid(ad->method) == NID_ad_ca_issuers && ad->location != nullptr &&
        ad->location->type == GEN_URI) {
      url = asn1_text(ad->location->d.uniformResourceIdentifier);
    }
  }
  AUTHORITY_INFO_ACCESS_free(access);
  return url;
}

std::string subject_alt_names(const X509* x, std::size_t max_names) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  std::string out;
  std::size_t listed = 0;
  const int count = names != nullptr ? sk_GENERAL_NAME_num(names) : 0;
  for (int i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS && name->type != GEN_IPADD) {
      continue;
    }
    if (listed == max_names) {
      out += fmt::format(" and {} more", count - i);
      break;
    }
    out += listed++ == 0 ? "" : ", ";
    out += name->type == GEN_DNS ? "DNS:" + asn1_text(name->d.dNSName)
                                 : "IP:" + ip_text(name->d.iPAddress);
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace nines::net
