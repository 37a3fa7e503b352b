// libFuzzer target: the SSE parser must never crash, never exceed its bound, and give the same
// events however the input is split.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/http/sse_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  nines::core::sse_parser whole(4096);
  std::vector<nines::core::sse_event> a;
  const auto ea = whole.feed(text, a);
  // The same bytes split at a point chosen by the input itself.
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  nines::core::sse_parser split(4096);
  std::vector<nines::core::sse_event> b;
  auto eb = split.feed(text.substr(0, cut), b);
  if (eb == nines::core::sse_error::none) {
    eb = split.feed(text.substr(cut), b);
  }
  if (ea == nines::core::sse_error::none && eb == nines::core::sse_error::none) {
    if (a.size() != b.size()) {
      __builtin_trap();
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (a[i].data != b[i].data || a[i].type != b[i].type || a[i].id != b[i].id) {
        __builtin_trap();
      }
    }
  }
  for (const auto& e : a) {
    if (e.data.size() > 4096) {
      __builtin_trap();
    }
  }
  return 0;
}
