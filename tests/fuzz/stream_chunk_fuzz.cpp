// libFuzzer target: upstream stream events are network bytes; reading and rewriting them must
// never crash, and a rewritten event is valid JSON carrying the original identity.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/stream/stream_continuation.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto chunk = nines::core::read_stream_chunk(text);
  nines::core::stream_progress progress;
  progress.identity_known = true;
  progress.id = "orig";
  progress.carried_tokens = 3;
  progress.record(chunk);
  if (chunk.valid) {
    if (auto rewritten = nines::core::rewrite_continuation_chunk(text, progress)) {
      boost::json::error_code ec;
      auto v = boost::json::parse(*rewritten, ec);
      if (ec || !v.is_object() || v.as_object().at("id").as_string() != "orig") {
        __builtin_trap();
      }
    }
  }
  return 0;
}
