// libFuzzer target: tus header values (core/upload/tus_headers.hpp) and base64. Never a crash;
// a value that is accepted means one thing: base64 that decodes encodes back to the same text,
// metadata keys are unique and visible, and an upload reference yields a well-formed id.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/codec/base64.hpp"
#include "core/upload/tus_headers.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace nines::core;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (const auto decoded = base64_decode(text); decoded && base64_encode(*decoded) != text) {
    __builtin_trap();
  }
  std::vector<upload_metadata_entry> entries;
  if (parse_upload_metadata(text, entries).empty()) {
    if (entries.empty() || entries.size() > max_metadata_entries) {
      __builtin_trap();
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].key.empty() || entries[i].key.find_first_of(", ") != std::string::npos) {
        __builtin_trap();
      }
      for (std::size_t j = 0; j < i; ++j) {
        if (entries[i].key == entries[j].key) {
          __builtin_trap();
        }
      }
    }
  }
  if (const auto c = parse_upload_checksum(text);
      c && (c->algorithm.empty() || c->digest.empty())) {
    __builtin_trap();
  }
  if (const auto id = upload_id_of(text); id && !is_upload_id(*id)) {
    __builtin_trap();
  }
  if (const auto n = parse_upload_number(text); n && std::to_string(*n) != text) {
    __builtin_trap();
  }
  return 0;
}
