// libFuzzer target: what the answer cache reads from a client (core/cache): Cache-Control and
// Pragma values, and a body compared piece by piece with a kept request's. Never a crash; a
// max-age is bounded; a body matches a kept request exactly when it is the same bytes, however it
// was cut into pieces.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/cache/answer_key.hpp"
#include "core/cache/cache_control.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nines::core;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cache_directives d;
  read_cache_control(text, d);
  read_pragma(text, d);
  if (d.max_age && *d.max_age > (1ull << 31)) {
    __builtin_trap();
  }
  // The first byte cuts the rest in two: a kept body and an arriving one, whose pieces are as long
  // as the bytes of the kept one say (1 to 16).
  if (size < 2) {
    return 0;
  }
  const std::size_t cut = 1 + data[0] % (size - 1);
  const std::string kept_body(text.substr(1, cut - 1));
  const std::string arriving(text.substr(cut));
  for (const auto* body : {&arriving, &kept_body}) {
    auto kept = std::make_shared<const answer_request>(
        answer_request{"POST", "/v1/chat/completions", "", "", kept_body});
    body_candidates candidates({kept});
    std::size_t at = 0;
    std::size_t i = 0;
    while (at < body->size()) {
      const auto step = kept_body.empty()
                            ? 0u
                            : static_cast<unsigned char>(kept_body[i++ % kept_body.size()]) % 16u;
      const std::size_t n = std::min<std::size_t>(body->size() - at, 1 + step);
      candidates.take(std::string_view(*body).substr(at, n));
      at += n;
    }
    if ((candidates.match() != nullptr) != (*body == kept_body)) {
      __builtin_trap();
    }
  }
  return 0;
}
