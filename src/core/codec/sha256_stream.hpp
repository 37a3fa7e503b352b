#pragma once
// SHA-256 of bytes that arrive in pieces (OpenSSL's EVP digest): an upload's content as it is
// appended, so that its digest is known when its last byte is, without reading it again.

#include <array>
#include <memory>
#include <string_view>

namespace nines::core {

class sha256_stream {
 public:
  using digest = std::array<unsigned char, 32>;
  sha256_stream();
  ~sha256_stream();
  sha256_stream(sha256_stream&&) noexcept;
  sha256_stream& operator=(sha256_stream&&) noexcept;
  // A stream that goes on from where this one is (a tentative continuation).
  sha256_stream copy() const;

  void update(std::string_view bytes);
  // The digest of everything so far; the stream can go on after it.
  digest current() const;

 private:
  struct context;
  std::unique_ptr<context> ctx_;
};

}  // namespace nines::core
