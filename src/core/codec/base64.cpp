#include "core/codec/base64.hpp"

#include <array>
#include <cstdint>

namespace nines::core {
namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> values = [] {
  std::array<std::int8_t, 256> v{};
  v.fill(-1);
  for (std::size_t i = 0; i < alphabet.size(); ++i) {
    v[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  }
  return v;
}();

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16 |
                            static_cast<unsigned char>(bytes[i + 1]) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(alphabet[n >> 18]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(alphabet[(n >> 6) & 63]);
    out.push_back(alphabet[n & 63]);
  }
  if (const auto rest = bytes.size() - i; rest > 0) {
    std::uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) {
      n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    }
    out.push_back(alphabet[n >> 18]);
    out.push_back(alphabet[(n >> 12) & 63]);
    out.push_back(rest == 2 ? alphabet[(n >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return std::nullopt;
  }
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') {
    pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    std::uint32_t n = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const bool padding = last && j >= 4 - pad;
      const auto v = values[static_cast<unsigned char>(text[i + j])];
      if (padding ? text[i + j] != '=' : v < 0) {
        return std::nullopt;
      }
      n = n << 6 | static_cast<std::uint32_t>(padding ? 0 : v);
    }
    // Bits the padding hides must be zero: "QQ==" is "A", "QR==" is refused.
    if ((pad == 2 && last && (n & 0xffff) != 0) || (pad == 1 && last && (n & 0xff) != 0)) {
      return std::nullopt;
    }
    out.push_back(static_cast<char>(n >> 16));
    if (!(last && pad == 2)) {
      out.push_back(static_cast<char>((n >> 8) & 0xff));
    }
    if (!(last && pad >= 1)) {
      out.push_back(static_cast<char>(n & 0xff));
    }
  }
  return out;
}

}  // namespace nines::core
