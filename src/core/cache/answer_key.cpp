#include "core/cache/answer_key.hpp"

#include <cstdint>
#include <string>

#include "core/codec/sha256_stream.hpp"

namespace nines::core {
namespace {

// Each part with its length first: no two different sets of parts hash the same bytes.
void add(sha256_stream& s, std::string_view part) {
  unsigned char length[8];
  auto n = static_cast<std::uint64_t>(part.size());
  for (auto& b : length) {
    b = static_cast<unsigned char>(n & 0xff);
    n >>= 8;
  }
  s.update(std::string_view(reinterpret_cast<const char*>(length), sizeof length));
  s.update(part);
}

}  // namespace

answer_key make_answer_key(const answer_key_parts& parts) {
  sha256_stream s;
  add(s, "nines answer key 1");
  add(s, parts.method);
  add(s, parts.target);
  add(s, parts.identity);
  add(s, parts.headers);
  if (parts.body_digest != nullptr) {
    add(s, std::string_view(reinterpret_cast<const char*>(parts.body_digest->data()),
                            parts.body_digest->size()));
  } else {
    add(s, {});
  }
  return s.current();
}

std::string answer_key_hex(const answer_key& key) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(key.size() * 2);
  for (const auto b : key) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

}  // namespace nines::core
