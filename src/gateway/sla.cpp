#include "gateway/sla.hpp"

namespace nines::gateway {

void record_sla(sla_shard& shard, std::string_view route, const obs::request_record& r) {
  const bool counted = route == "chat" || route == "completions" || route == "embeddings" ||
                       route == "models" || route == "other_v1";
  if (!counted) {
    return;
  }
  if (r.outcome == "ok") {
    shard.good.fetch_add(1, std::memory_order_relaxed);
    if (r.ttfb_ms >= 0) {
      shard.ttft[core::ttft_bucket(r.ttfb_ms / 1000.0)].fetch_add(1, std::memory_order_relaxed);
    }
  } else if (r.outcome == "failed" || r.outcome == "stream_incomplete") {
    shard.bad.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace nines::gateway
