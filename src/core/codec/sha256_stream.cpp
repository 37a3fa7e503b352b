#include "core/codec/sha256_stream.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace nines::core {

struct sha256_stream::context {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~context() { EVP_MD_CTX_free(md); }
};

sha256_stream::sha256_stream() : ctx_(std::make_unique<context>()) {
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) {
    throw std::bad_alloc();  // OpenSSL could not allocate a digest context
  }
}
sha256_stream::~sha256_stream() = default;
sha256_stream::sha256_stream(sha256_stream&&) noexcept = default;
sha256_stream& sha256_stream::operator=(sha256_stream&&) noexcept = default;

sha256_stream sha256_stream::copy() const {
  sha256_stream out;
  if (EVP_MD_CTX_copy_ex(out.ctx_->md, ctx_->md) != 1) {
    throw std::bad_alloc();
  }
  return out;
}

void sha256_stream::update(std::string_view bytes) {
  EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size());
}

sha256_stream::digest sha256_stream::current() const {
  digest out{};
  EVP_MD_CTX* copy = EVP_MD_CTX_new();
  unsigned int size = 0;
  if (copy != nullptr && EVP_MD_CTX_copy_ex(copy, ctx_->md) == 1) {
    EVP_DigestFinal_ex(copy, out.data(), &size);
  }
  EVP_MD_CTX_free(copy);
  return out;
}

}  // namespace nines::core
