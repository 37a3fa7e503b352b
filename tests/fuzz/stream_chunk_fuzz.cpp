// libFuzzer target: upstream stream events are network bytes; reading and rewriting them must
// never crash, and a rewritten event is valid JSON carrying the original identity (also in a
// stream whose thought is under way); typed events (core/stream/stream_dialect.hpp) likewise.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/stream/stream_continuation.hpp"
#include "core/stream/stream_dialect.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto chunk = nines::core::read_stream_chunk(text);
  nines::core::stream_progress progress;
  progress.identity_known = true;
  progress.id = "orig";
  progress.carried_tokens = 3;
  progress.record(chunk);
  // A stream in its thought: reasoning and answer fields are moved between, never lost as JSON.
  nines::core::stream_progress thinking = progress;
  thinking.reasoning = "t ";
  thinking.reasoning_fields = nines::core::reasoning_field;
  if (chunk.valid) {
    for (const auto* p : {&progress, &thinking}) {
      if (auto rewritten = nines::core::rewrite_continuation_chunk(text, *p)) {
        boost::json::error_code ec;
        auto v = boost::json::parse(*rewritten, ec);
        if (ec || !v.is_object() || v.as_object().at("id").as_string() != "orig") {
          __builtin_trap();
        }
      }
    }
  }
  // Typed events (Responses, messages): read without a crash; a valid one has a type.
  const auto typed = nines::core::read_typed_event(text);
  if (typed.valid && typed.type.empty() &&
      nines::core::is_terminal_event(nines::core::stream_dialect::responses, typed.type)) {
    __builtin_trap();
  }
  return 0;
}
