// libFuzzer target: upstream stream events are network bytes; reading and rewriting them must
// never crash, and a rewritten event is valid JSON carrying the original identity (also in a
// stream whose thought is under way); typed events (core/stream/stream_dialect.hpp) and the
// Responses tracker (core/stream/responses_stream.hpp) likewise.
#include <boost/json/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/stream/stream_continuation.hpp"
#include "core/stream/responses_stream.hpp"
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
    for (auto* p : {&progress, &thinking}) {
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
  // A Responses event from the upstream, then the same bytes as a continuation's chat chunk:
  // followed and written without a crash, every event made valid JSON.
  boost::json::error_code ec;
  auto parsed = boost::json::parse(text, ec);
  if (!ec && parsed.is_object()) {
    nines::core::responses_progress responses;
    nines::core::stream_progress chat;
    responses.record(boost::json::parse(
                         R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_f"}})")
                         .as_object(),
                     &chat);
    responses.hold(parsed.as_object());
    responses.record(parsed.as_object(), &chat);
    std::vector<nines::core::sse_event> out;
    if (chunk.valid) {
      responses.continue_with(text, chunk, out);
    }
    responses.complete(chat, out);
    for (const auto& e : out) {
      boost::json::error_code made_ec;
      auto made = boost::json::parse(e.data, made_ec);
      if (made_ec || !made.is_object()) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
