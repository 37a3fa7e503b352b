// libFuzzer target: the request-body probe must never crash on any bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/json/json_probe.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = nines::core::probe_json(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.valid && r.error.empty()) {
    __builtin_trap();  // every rejection says why
  }
  return 0;
}
