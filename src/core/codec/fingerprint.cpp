#include "core/codec/fingerprint.hpp"

#include <new>
#include <xxhash.h>

namespace nines::core {

struct fingerprint_stream::state {
  XXH3_state_t* xxh = nullptr;
  ~state() { XXH3_freeState(xxh); }
};

fingerprint_stream::fingerprint_stream(std::uint64_t seed) : state_(std::make_unique<state>()) {
  state_->xxh = XXH3_createState();
  if (state_->xxh == nullptr) {
    throw std::bad_alloc();  // at a request's start, as any allocation would
  }
  XXH3_64bits_reset_withSeed(state_->xxh, seed);
}

fingerprint_stream::~fingerprint_stream() = default;
fingerprint_stream::fingerprint_stream(fingerprint_stream&&) noexcept = default;
fingerprint_stream& fingerprint_stream::operator=(fingerprint_stream&&) noexcept = default;

void fingerprint_stream::update(std::string_view bytes) {
  XXH3_64bits_update(state_->xxh, bytes.data(), bytes.size());
}

std::uint64_t fingerprint_stream::value() const { return XXH3_64bits_digest(state_->xxh); }

std::uint64_t fingerprint_of(std::string_view bytes, std::uint64_t seed) {
  return XXH3_64bits_withSeed(bytes.data(), bytes.size(), seed);
}

}  // namespace nines::core
