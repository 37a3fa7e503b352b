#include "obs/gateway_probe.hpp"

#include <charconv>

#include <fmt/format.h>

namespace nines::obs {

std::string_view route_label(std::string_view method, std::string_view path) {
  if (path.starts_with("/v1/chat/completions")) {
    return "chat";
  }
  if (path.starts_with("/v1/completions")) {
    return "completions";
  }
  if (path.starts_with("/v1/embeddings")) {
    return "embeddings";
  }
  if (path == "/v1/models" || path.starts_with("/v1/models/")) {
    return "models";
  }
  if (path == "/v1/uploads" || path.starts_with("/v1/uploads/")) {
    return "uploads";  // the gateway's own tus endpoint: not in the availability SLI
  }
  if (path == "/v1" || path.starts_with("/v1/")) {
    return "other_v1";
  }
  if (path == "/healthz" || path == "/readyz" || path == "/metrics" || path == "/status" ||
      path == "/dashboard") {
    return path.substr(1);
  }
  return method.empty() ? "unknown" : "unrouted";
}

counter& gateway_probe::cached_counter(std::string key, std::string_view name,
                                       std::string_view help, const labels& l) {
  return cached_counter(std::string_view(key), name, help, [&] { return l; });
}

histogram& gateway_probe::cached_histogram(std::string key, std::string_view name,
                                           std::string_view help, std::span<const double> bounds,
                                           const labels& l) {
  return cached_histogram(std::string_view(key), name, help, bounds, [&] { return l; });
}

std::string_view gateway_probe::key_of(std::initializer_list<std::string_view> parts) {
  key_.clear();
  for (const auto part : parts) {
    if (!key_.empty()) {
      key_.push_back('|');
    }
    key_.append(part);
  }
  return key_;
}

void gateway_probe::request_finished(std::string_view route, unsigned status,
                                     std::string_view outcome, std::string_view upstream,
                                     double seconds) {
  if (upstream.empty()) {
    upstream = "none";
  }
  char digits[12];
  const auto end = std::to_chars(digits, digits + sizeof digits, status).ptr;
  const std::string_view status_text(digits, static_cast<std::size_t>(end - digits));
  cached_counter(key_of({"req", route, status_text, outcome, upstream}), "nines_requests_total",
                 "Client requests answered, by route, HTTP status, outcome and the upstream that "
                 "served them (none: the gateway answered itself).",
                 [&] {
                   return labels{{"route", std::string(route)},
                                 {"status", std::string(status_text)},
                                 {"outcome", std::string(outcome)},
                                 {"upstream", std::string(upstream)}};
                 })
      .add(worker_);
  cached_histogram(key_of({"dur", route}), "nines_request_duration_seconds",
                   "Time from a request's arrival to the end of its answer, by route.",
                   latency_buckets(), [&] { return labels{{"route", std::string(route)}}; })
      .observe(worker_, seconds);
}

void gateway_probe::first_token(std::string_view route, double seconds) {
  cached_histogram(key_of({"ttft", route}), "nines_time_to_first_byte_seconds",
                   "Time from a request's arrival to the first byte of its answer sent to the "
                   "client (for a stream: its first event), by route.",
                   latency_buckets(), [&] { return labels{{"route", std::string(route)}}; })
      .observe(worker_, seconds);
}

histogram& gateway_probe::inter_token(std::string_view route) {
  return cached_histogram(key_of({"itl", route}), "nines_inter_token_seconds",
                          "Gaps between two writes of a stream to the client (each carries one "
                          "or more events), by route; a resume's gap is "
                          "nines_stream_resume_gap_seconds.",
                          gap_buckets(), [&] { return labels{{"route", std::string(route)}}; });
}

void gateway_probe::stream_resumed(core::stream_break cause, const std::string& from,
                                   const std::string& to, std::size_t carried_tokens,
                                   double gap_seconds) {
  const auto cause_text = std::string(core::to_string(cause));
  cached_counter(fmt::format("resume|{}|{}|{}", cause_text, from, to), "nines_stream_resumes_total",
                 "Streams continued on an upstream after a break, by cause, upstream left and "
                 "upstream joined.",
                 {{"cause", cause_text}, {"from", from}, {"to", to}})
      .add(worker_);
  cached_counter("carried", "nines_stream_resume_carried_tokens_total",
                 "Tokens already sent to clients when their streams were resumed (carried into "
                 "the continuation's prompt).",
                 {})
      .add(worker_, carried_tokens);
  cached_histogram("gap", "nines_stream_resume_gap_seconds",
                   "The gap a client saw at a resume: from the last event before the break to "
                   "the first event of the continuation.",
                   gap_buckets(), {})
      .observe(worker_, gap_seconds);
}

void gateway_probe::attempt_finished(const std::string& upstream, std::string_view outcome) {
  cached_counter(key_of({"att", upstream, outcome}), "nines_upstream_attempts_total",
                 "Attempts sent to each upstream, by how they ended (ok, broken mid-stream, "
                 "connect_refused, retryable_status, rate_limited, ...).",
                 [&] { return labels{{"upstream", upstream}, {"outcome", std::string(outcome)}}; })
      .add(worker_);
}

void gateway_probe::idle_connections_closed(const std::string& upstream, std::string_view reason,
                                            std::uint64_t count) {
  cached_counter(fmt::format("idle|{}|{}", upstream, reason),
                 "nines_upstream_idle_closed_total",
                 "Idle pooled connections closed because something arrived on them: the "
                 "upstream's close (peer_closed) or bytes nobody asked for (unsolicited_bytes), "
                 "which are never read as the next request's answer.",
                 {{"upstream", upstream}, {"reason", std::string(reason)}})
      .add(worker_, count);
}

gateway_probe::gateway_probe(registry& metrics, unsigned worker)
    : metrics_(metrics), worker_(worker) {
  // The counters with fixed labels exist from the start at 0, so that rates and alerts over them
  // work before their first event.
  retries();
  failovers();
  budget_exhausted();
  for (const char* what : {"sent", "won", "lost"}) {
    hedges(what);
    connect_races(what);
  }
  overflows("max_requests");
  for (const char* kind : {"last_event_id", "idempotency", "store", "takeover"}) {
    replays(kind);
  }
  for (const char* reason : {"unknown_id", "idempotency_conflict", "lost", "store_unavailable",
                             "store_busy", "store_incomplete", "store_malformed"}) {
    refusals(reason);
  }
}

counter& gateway_probe::retries() {
  return cached_counter("retries", "nines_retries_total",
                        "Attempts after a failed one, before the first byte reached the client.",
                        {});
}

counter& gateway_probe::failovers() {
  return cached_counter("failovers", "nines_failovers_total",
                        "Retries that went to another upstream than the failed attempt.", {});
}

counter& gateway_probe::budget_exhausted() {
  return cached_counter(
      "budget", "nines_retry_budget_exhausted_total",
      "Retries not sent because the retry budget was spent (the request failed fast).", {});
}

counter& gateway_probe::hedges(std::string_view what) {
  return cached_counter(fmt::format("hedge|{}", what), "nines_hedges_total",
                        "Hedged attempts: sent, and whether the hedge won or lost the race.",
                        {{"result", std::string(what)}});
}

void gateway_probe::retry(bool failover) {
  retries().add(worker_);
  if (failover) {
    failovers().add(worker_);
  }
}

void gateway_probe::retry_budget_exhausted() { budget_exhausted().add(worker_); }

void gateway_probe::hedge(std::string_view what) { hedges(what).add(worker_); }

counter& gateway_probe::connect_races(std::string_view what) {
  return cached_counter(fmt::format("connect_race|{}", what), "nines_connect_races_total",
                        "Attempts started because a connect was slow (routing.connect_race_ms): "
                        "sent, and whether the racing attempt won or lost.",
                        {{"result", std::string(what)}});
}

void gateway_probe::connect_race(std::string_view what) { connect_races(what).add(worker_); }

void gateway_probe::edge_upload(std::string_view result, std::uint64_t sent,
                                std::uint64_t resent) {
  cached_counter(fmt::format("edge_upload|{}", result), "nines_edge_uploads_total",
                 "Request bodies sent to an uplink as tus uploads, by how it went: ready, "
                 "resumed (an earlier upload continued), inline (the uplink took none), failed.",
                 {{"result", std::string(result)}})
      .add(worker_);
  for (const auto& [kind, n] : {std::pair{"sent", sent}, std::pair{"resent", resent}}) {
    cached_counter(fmt::format("edge_upload_bytes|{}", kind), "nines_edge_upload_bytes_total",
                   "Body bytes written toward uplinks' uploads; resent: bytes written a second "
                   "time because the gateway had not stored them when a connection broke.",
                   {{"kind", kind}})
        .add(worker_, n);
  }
}

counter& gateway_probe::overflows(std::string_view limit) {
  return cached_counter(fmt::format("overflow|{}", limit), "nines_overflow_total",
                        "Requests refused with 503 because every upstream was at a limit.",
                        {{"limit", std::string(limit)}});
}

counter& gateway_probe::replays(std::string_view kind) {
  return cached_counter(fmt::format("replay|{}", kind), "nines_journal_replays_total",
                        "Clients served from the journal: reconnects with Last-Event-ID and "
                        "repeats of an Idempotency-Key (store: a reconnect read from the shared "
                        "journal in Redis).",
                        {{"kind", std::string(kind)}});
}

counter& gateway_probe::refusals(std::string_view reason) {
  return cached_counter(fmt::format("refused|{}", reason), "nines_journal_refusals_total",
                        "Reconnects and repeats the journal could not serve, by reason.",
                        {{"reason", std::string(reason)}});
}

void gateway_probe::overflow(std::string_view limit) { overflows(limit).add(worker_); }

void gateway_probe::journal_replay(std::string_view kind) { replays(kind).add(worker_); }

void gateway_probe::cache_answer(std::string_view result) {
  cached_counter(fmt::format("cache|{}", result), "nines_cache_requests_total",
                 "Requests on the API routes while the answer cache is on, by what it did: hit "
                 "(answered from it), shared (joined an identical request's generation), miss "
                 "(generated, and kept if complete), bypass (not looked up, or not to be kept).",
                 {{"result", std::string(result)}})
      .add(worker_);
}

void gateway_probe::journal_refused(std::string_view reason) { refusals(reason).add(worker_); }

void gateway_probe::auth_refused(std::string_view reason) {
  cached_counter(
      fmt::format("auth|{}", reason), "nines_auth_refusals_total",
      "Requests refused by the client-key checks, by reason (missing, unknown, "
      "expired, model, rate, tokens, concurrency, store: the shared limits' Redis away with "
      "auth.shared_limits = closed).",
      {{"reason", std::string(reason)}})
      .add(worker_);
}

}  // namespace nines::obs
