#pragma once
// A fast, seeded 64-bit hash of bytes that arrive in pieces (xxHash's XXH3): a body's fingerprint,
// taken while it arrives at memory speed, so that it is known when its last byte is. Not a
// cryptographic digest: whatever is found by a fingerprint is checked byte for byte (the answer
// cache), and the seed is the process's own, drawn at its start.

#include <cstdint>
#include <memory>
#include <string_view>

namespace nines::core {

class fingerprint_stream {
 public:
  explicit fingerprint_stream(std::uint64_t seed);
  ~fingerprint_stream();
  fingerprint_stream(fingerprint_stream&&) noexcept;
  fingerprint_stream& operator=(fingerprint_stream&&) noexcept;

  void update(std::string_view bytes);
  std::uint64_t value() const;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

std::uint64_t fingerprint_of(std::string_view bytes, std::uint64_t seed);

}  // namespace nines::core
