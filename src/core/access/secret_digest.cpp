#include "core/access/secret_digest.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdexcept>

#include "core/http/ascii.hpp"

namespace nines::core {

secret_digest sha256_of(std::string_view data) {
  secret_digest out{};
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &size, EVP_sha256(), nullptr);
  return out;
}

std::optional<secret_digest> parse_secret_digest(std::string_view text) {
  constexpr std::string_view prefix = "sha256:";
  if (text.size() != prefix.size() + 64 || !iequals(text.substr(0, prefix.size()), prefix)) {
    return std::nullopt;
  }
  text.remove_prefix(prefix.size());
  secret_digest out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    const int hi = hex_value(text[2 * i]);
    const int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return std::nullopt;
    }
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

std::string format_secret_digest(const secret_digest& d) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (const unsigned char b : d) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

bool same_digest(const secret_digest& a, const secret_digest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string new_client_secret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    throw std::runtime_error("the random generator failed");  // at a command line, not a request
  }
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "nk-";
  unsigned bits = 0;
  unsigned value = 0;
  for (const unsigned char b : bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(value >> bits) & 63]);
    }
  }
  if (bits > 0) {
    out.push_back(alphabet[(value << (6 - bits)) & 63]);
  }
  return out;
}

std::optional<std::string_view> bearer_secret(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer";
  if (authorization.size() <= scheme.size() + 1 ||
      !iequals(authorization.substr(0, scheme.size()), scheme) ||
      authorization[scheme.size()] != ' ') {
    return std::nullopt;
  }
  auto secret = authorization.substr(scheme.size() + 1);
  while (!secret.empty() && secret.front() == ' ') {
    secret.remove_prefix(1);
  }
  if (secret.empty() || secret.find(' ') != std::string_view::npos) {
    return std::nullopt;
  }
  return secret;
}

bool sendable_secret(std::string_view secret) {
  if (secret.empty() || secret.size() > 8192) {
    return false;
  }
  for (const unsigned char c : secret) {
    if (c < 0x21 || c > 0x7e) {
      return false;
    }
  }
  return true;
}

}  // namespace nines::core
