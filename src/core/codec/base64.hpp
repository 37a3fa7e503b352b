#pragma once
// Base64 (RFC 4648 §4, the standard alphabet with padding), strictly: a value that is not
// canonical base64 (a bad length, a byte off the alphabet, padding anywhere but at the end, or
// non-zero bits left in the last character) is refused, so that one value has one meaning.
// tus carries metadata values and checksums this way.

#include <optional>
#include <string>
#include <string_view>

namespace nines::core {

std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace nines::core
