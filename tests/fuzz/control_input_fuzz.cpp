// libFuzzer target: the small parsers of control input that comes from the network — chaos
// toxics (JSON and key=value forms, the chaos API's bodies), Last-Event-ID and traceparent values
// (client headers) — must never crash, and what they accept must survive a round trip.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/tools/chaos_toxic.hpp"
#include "core/config/key_values.hpp"
#include "core/stream/stream_journal.hpp"
#include "core/obs/trace_context.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Last-Event-ID: a parsed id formats back to the same text.
  if (const auto id = nines::core::parse_event_id(text)) {
    const auto again = nines::core::parse_event_id(nines::core::format_event_id(id->stream_key, id->seq));
    if (!again || again->stream_key != id->stream_key || again->seq != id->seq) {
      std::abort();
    }
  }
  // traceparent: an accepted one, continued, keeps its trace and names it as the parent; the
  // header sent on is valid again.
  if (const auto tp = nines::core::parse_traceparent(text)) {
    nines::core::splitmix_rng random(size);
    const auto next = nines::core::continue_trace(text, random);
    const auto sent = nines::core::parse_traceparent(next.traceparent());
    if (next.trace_id != tp->trace_id || next.parent_id != tp->parent_id || !sent ||
        sent->trace_id != tp->trace_id || sent->parent_id != next.span_id) {
      std::abort();
    }
  }
  // key=value lists.
  std::vector<nines::core::key_value> items;
  nines::core::split_key_values(text, items);
  nines::core::toxic t;
  nines::core::toxic_from_text(text, t);
  // Toxics in JSON: an accepted toxic serialises to a toxic that is accepted again, unchanged.
  boost::json::error_code ec;
  const auto v = boost::json::parse(text, ec);
  if (!ec && nines::core::toxic_from_json(v, t).empty()) {
    nines::core::toxic back;
    if (!nines::core::toxic_from_json(nines::core::toxic_to_json(t), back).empty() ||
        back.name != t.name || back.latency != t.latency || back.bytes != t.bytes) {
      std::abort();
    }
    // Its plan for a chunk stays within the chunk.
    nines::core::splitmix_rng random(size);
    nines::core::direction_progress progress;
    const nines::core::toxic* list[] = {&t};
    const auto plan = nines::core::plan_chunk(list, size % 5000, progress, random);
    std::size_t covered = 0;
    for (const auto& p : plan.pieces) {
      if (p.offset != covered) {
        std::abort();
      }
      covered += p.length;
    }
    if (covered > size % 5000) {
      std::abort();
    }
  }
  return 0;
}
