// libFuzzer target: the config reader must report problems, never crash, on any text.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/config/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // As the gateway reads it, and as the edge does ([edge], [[uplinks]]).
  for (const auto role : {nines::core::config_role::gateway, nines::core::config_role::edge}) {
    auto r = nines::core::parse_config(text, "fuzz.toml", role);
    if (r.value.has_value() == !r.problems.empty()) {
      __builtin_trap();  // a config is either valid or has problems, never both or neither
    }
  }
  return 0;
}
