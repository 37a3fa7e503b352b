// libFuzzer target: the config reader must report problems, never crash, on any text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto r = nines::core::parse_config(std::string_view(reinterpret_cast<const char*>(data), size),
                                     "fuzz.toml");
  if (r.value.has_value() == !r.problems.empty()) {
    __builtin_trap();  // a config is either valid or has problems, never both or neither
  }
  return 0;
}
