// The attempt loop (docs/architecture.md, "Life of a request", steps 3 and 4): choose an upstream,
// send an attempt, and after a failure decide whether and where to try again; hedge a slow first
// attempt; resume a stream that broke after its first byte; or tell the client what went wrong.

#include "gateway/forwarder.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/config/key_values.hpp"
#include "core/http/openai_error.hpp"
#include "core/json/json_probe.hpp"
#include "core/json/json_text.hpp"
#include "core/stream/stream_journal.hpp"
#include "gateway/answer_cache_relay.hpp"
#include "gateway/journal_relay.hpp"
#include "gateway/request_forwarder.hpp"
#include "gateway/shared_limits.hpp"
#include "gateway/upload_endpoint.hpp"
#include "net/spawn.hpp"
#include "net/wakeup.hpp"

namespace nines::gateway {

using namespace net;
using core::attempt_failure;
using std::chrono::milliseconds;

void request_cancellation::cancel() {
  client_gone = true;
  for (auto* c : connections) {
    if (c != nullptr) {
      c->close();  // its server stops generating
    }
  }
  if (waiting != nullptr) {
    waiting->notify();
  }
  for (auto& a : acquiring) {
    a.cancel();
  }
}

void request_forwarder::client_departed() { cancellation_.cancel(); }

void attempt_race::stop(unsigned k) {
  cancelled[k] = true;
  if (request != nullptr) {
    request->acquiring[k].cancel();
  }
  if (connections[k] != nullptr) {
    connections[k]->close();
  }
}

bool attempt_race::path_works(unsigned k, steady::time_point now) {
  if (!connected[k] && sent_at[k] && connections[k] != nullptr &&
      connections[k]->acknowledged_within(
          std::chrono::duration_cast<milliseconds>(now - *sent_at[k]))) {
    connected[k] = true;  // a pooled connection whose peer acknowledged the request
  }
  return connected[k];
}

void attempt_race::connected_first(unsigned id) {
  connected[id] = true;
  const unsigned other = 1 - id;
  if (!connect_race || !started[other] || cancelled[other] || winner ||
      path_works(other, steady::now())) {
    return;
  }
  // Only the first attempt had a head start; a pool at its limit says nothing about the path.
  outpaced[other] = other == 0 && (request == nullptr || request->acquiring[other].waiting == nullptr);
  stop(other);  // it ends as a lost race; outpaced, it counts as a slow path to its upstream
}

bool attempt_race::claim(unsigned id) {
  if (cancelled[id]) {
    return false;  // given up already (a connect race decided against it)
  }
  if (!winner) {
    winner = id;
    for (unsigned k = 0; k < connections.size(); ++k) {
      if (k != id && started[k]) {
        stop(k);
      }
    }
    return true;
  }
  return *winner == id;
}

request_forwarder::request_forwarder(request& req, net::response_sink& client, worker_state& worker,
                                     obs::request_record& record, std::string stream_key,
                                     request_kind kind, const stream_takeover* takeover)
    : req_(req),
      client_(client),
      worker_(worker),
      gen_(worker.gen),
      pools_(worker.pools),
      cfg_(*gen_->config),
      record_(record),
      start_(steady::now()),
      deadline_(start_ + cfg_.retry.deadline),
      body_(req.body()),
      stream_key_(std::move(stream_key)),
      kind_(kind),
      takeover_(takeover) {}

void request_forwarder::note_delivery(std::size_t upstream, attempt_context& ctx) {
  if (ctx.delivered) {
    return;
  }
  ctx.delivered = true;
  gen_->live.record_delivery(upstream);
  record_.served_by = cfg_.upstreams[upstream].name;
  if (record_.ttfb_ms < 0) {
    record_.ttfb_ms = std::chrono::duration<double, std::milli>(steady::now() - start_).count();
  }
}

obs::histogram& request_forwarder::inter_token() {
  if (inter_token_ == nullptr) {
    inter_token_ = &worker_.probe.inter_token(obs::route_label(record_.method, record_.path));
  }
  return *inter_token_;
}

std::vector<core::upstream_candidate> request_forwarder::candidates(
    const routing_snapshot& routing) const {
  const auto now = steady::now();
  std::vector<core::upstream_candidate> out(cfg_.upstreams.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& u = cfg_.upstreams[i];
    const auto& live = gen_->live[i];
    const upstream_route_state r =
        i < routing.upstreams.size() ? routing.upstreams[i] : upstream_route_state{};
    const unsigned in_flight = live.in_flight.load(std::memory_order_relaxed);
    const bool breaker_lets_through =
        r.breaker == core::breaker_state::closed ||
        (r.breaker == core::breaker_state::half_open &&
         live.trials_in_flight.load(std::memory_order_relaxed) < cfg_.outlier.half_open_trials);
    auto& c = out[i];
    c.priority = u.priority;
    c.weight = u.weight;
    // An upstream whose every credential was refused (and is cooling down) is avoided like one
    // that refuses connections, while others can serve.
    const auto& creds = gen_->credentials[i];
    c.cooling = !gen_->live.available(i, now) || (creds && creds->usable(now) == 0);
    c.available = r.healthy && breaker_lets_through && !c.cooling;
    c.score = r.score;
    c.in_flight = in_flight;
    // A half-open upstream is judged by its trials, not by what it did before its ejection.
    c.failures_in_row = r.breaker == core::breaker_state::half_open
                            ? 0
                            : live.gateway_failures_in_row.load(std::memory_order_relaxed) +
                                  live.connect_failures_in_row.load(std::memory_order_relaxed);
    const auto [lost, since_lost] = gen_->live.races_lost(i, now);
    c.races_lost = core::race_losses_that_count(lost, since_lost, cfg_.hedge.delays);
    c.at_limit = u.max_requests > 0 && in_flight >= u.max_requests;
    c.retry_ok = pools_->retry_tokens[i]->allows_retry();
    c.panic = r.panic;
  }
  return out;
}

std::optional<std::size_t> request_forwarder::choose(std::vector<core::upstream_candidate>& c,
                                                     std::uint64_t tried, bool retry,
                                                     const routing_snapshot& routing,
                                                     bool& trial) {
  core::selection_context context{routing.active_priority, retry};
  for (std::size_t round = 0; round <= c.size(); ++round) {
    const auto chosen = core::select_upstream(c, tried, worker_.random, context);
    if (!chosen) {
      return std::nullopt;
    }
    const bool half_open = *chosen < routing.upstreams.size() &&
                           routing.upstreams[*chosen].breaker == core::breaker_state::half_open;
    trial = false;
    if (!half_open || !c[*chosen].available) {
      return chosen;  // closed, or ejected but chosen because nothing else could serve
    }
    if (gen_->live.try_begin_trial(*chosen, cfg_.outlier.half_open_trials)) {
      trial = true;
      return chosen;
    }
    c[*chosen].available = false;  // its trial slots went to other requests meanwhile
  }
  return std::nullopt;
}

void request_forwarder::log_tls_failure(std::size_t upstream, const std::string& why) {
  if (worker_.tls_failure_logged.allow(upstream, cfg_.upstreams.size(), steady::now())) {
    spdlog::warn("upstream {}: TLS handshake failed: {}", cfg_.upstreams[upstream].name, why);
  }
}

void request_forwarder::report_outcome(std::size_t upstream, const attempt_result& r) {
  auto& live = gen_->live;
  if (r.slow_connect) {
    // Another path connected while this one was still trying: avoided for a while, as a
    // refused one is, so that the next requests do not wait for the race again.
    live.record_connect_failure(upstream, steady::now(), worker_.shared->cooldown);
    worker_.probe.attempt_finished(cfg_.upstreams[upstream].name, "connect_slow");
    return;
  }
  if (r.lost_race || r.overflow || r.client_left) {
    return;  // says nothing about the upstream
  }
  auto& tokens = *pools_->retry_tokens[upstream];
  std::string_view outcome = "ok";
  bool failed = false;
  if (r.end == phase::relaying) {
    outcome = "broken";  // a mid-stream break or stall counts against the upstream
    failed = true;
    live.record_gateway_failure(upstream);
  } else if (r.end == phase::finished || r.end == phase::failed) {
    live.record_success(upstream);
  } else {
    switch (r.failure) {
      case attempt_failure::connect_refused:
      case attempt_failure::connect_timeout:
      case attempt_failure::connect_error:
      case attempt_failure::tls_error:
        if (r.failure == attempt_failure::tls_error) {
          log_tls_failure(upstream, r.detail);
        }
        outcome = core::to_string(r.failure);
        failed = true;
        live.record_connect_failure(upstream, steady::now(), worker_.shared->cooldown);
        break;
      case attempt_failure::retryable_status:
        if (r.status == 429) {
          outcome = "rate_limited";  // alive but busy: Retry-After is honoured, not counted
        } else {
          outcome = "retryable_status";
          failed = true;
          live.record_gateway_failure(upstream);
        }
        break;
      case attempt_failure::response_too_large:
        outcome = "too_large";
        break;
      case attempt_failure::credential_rejected:
        outcome = "credential_rejected";  // the key's fault, not the server's: not counted
        break;
      case attempt_failure::not_continuable:
        outcome = "not_continuable";  // its settings say no; nothing was sent: not counted
        break;
      case attempt_failure::none:
        live.record_success(upstream);
        break;
      default:
        outcome = core::to_string(r.failure);
        failed = true;
        live.record_gateway_failure(upstream);
        break;
    }
  }
  if (failed) {
    tokens.on_failure();
  } else {
    tokens.on_success();
  }
  worker_.probe.attempt_finished(cfg_.upstreams[upstream].name, outcome);
}

awaitable<attempt_result> request_forwarder::run_attempt(std::size_t upstream, bool retry,
                                                         bool trial, attempt_race* race,
                                                         unsigned id) {
  attempt_context ctx;
  ctx.id = id;
  ctx.race = race;
  ctx.request = &cancellation_;
  ctx.st = committed_;
  auto& live = gen_->live[upstream];
  live.in_flight.fetch_add(1, std::memory_order_relaxed);
  if (retry) {
    ++worker_.active_retries;  // until the retry commits or fails: retries *trying* are bounded
    ctx.retry_slot = &worker_.active_retries;
  }
  auto result = co_await attempt(upstream, ctx);
  ctx.release_retry_slot();
  live.in_flight.fetch_sub(1, std::memory_order_relaxed);
  report_outcome(upstream, result);
  if (trial && result.client_left) {
    gen_->live.release_trial(upstream);  // cancelled: no verdict on the upstream
  } else if (trial) {
    const bool ok = result.end == phase::finished || result.end == phase::failed ||
                    (result.failure == attempt_failure::retryable_status && result.status == 429);
    gen_->live.end_trial(upstream, ok && !result.lost_race);
  }
  if (ctx.time_to_first_byte && !continuing_) {
    pools_->ttfb[upstream]->record(*ctx.time_to_first_byte);
    gen_->live.record_ttft(upstream, std::chrono::duration<double>(*ctx.time_to_first_byte).count());
  }
  if (ctx.delivered) {
    committed_ = std::move(ctx.st);
  }
  co_return result;
}

// Two attempts of a hedge, and the parent waiting for them.
struct request_forwarder::hedge_slots {
  explicit hedge_slots(const asio::any_io_executor& ex) : wake(ex) {}
  std::array<std::optional<attempt_result>, 2> results;
  unsigned running = 0;
  wakeup wake;
};

awaitable<void> request_forwarder::hedge_child(std::size_t upstream, bool retry, bool trial,
                                               attempt_race* race, unsigned id,
                                               std::shared_ptr<hedge_slots> slots) {
  slots->results[id] = co_await run_attempt(upstream, retry, trial, race, id);
  --slots->running;
  slots->wake.notify();
}

awaitable<attempt_result> request_forwarder::hedged_attempt(
    std::size_t first, bool trial, std::optional<milliseconds> hedge_delay,
    std::optional<milliseconds> connect_race, std::uint64_t& tried,
    const routing_snapshot& routing) {
  const auto executor = co_await asio::this_coro::executor;
  attempt_race race;
  race.request = &cancellation_;
  race.started[0] = true;
  auto slots = std::make_shared<hedge_slots>(executor);
  slots->running = 1;
  spawn(executor, hedge_child(first, false, trial, &race, 0, slots), "hedged attempt");
  const auto start = steady::now();
  const auto never = steady::time_point::max();
  const auto hedge_at = hedge_delay ? start + *hedge_delay : never;
  const auto race_at = connect_race ? start + *connect_race : never;
  bool racing_connect = false;
  cancellation_.waiting = &slots->wake;  // a departure ends the waits below at once
  while (slots->running > 0 && !race.winner && !slots->results[0] && !cancellation_.client_gone) {
    // Connected in time, the connect race is off; the hedge still waits for a first byte.
    const auto until = race.connected[0] ? hedge_at : std::min(hedge_at, race_at);
    const auto now = steady::now();
    if (now >= until && until == race_at && race.path_works(0, now)) {
      continue;  // its request was acknowledged: no race; the hedge (if any) still waits
    }
    if (now >= until) {
      racing_connect = until == race_at && !race.connected[0];
      break;
    }
    if (until == never) {
      co_await slots->wake.wait();
    } else {
      co_await slots->wake.wait(until);
    }
  }
  if (slots->running > 0 && !slots->results[0] && !race.winner && !cancellation_.client_gone &&
      (hedge_delay || racing_connect)) {
    // The first attempt has sent nothing after the hedge delay, or has no connection after the
    // connect race's: a second one, elsewhere.
    auto c = candidates(routing);
    bool second_trial = false;
    const auto second = choose(c, tried, true, routing, second_trial);
    if (second && *second != first &&
        core::retry_allowed(cfg_.retry.budget, worker_.active_requests, worker_.active_retries)) {
      if (*second < 64) {
        tried |= std::uint64_t{1} << *second;
      }
      ++record_.attempts;
      record_.upstreams.push_back(cfg_.upstreams[*second].name);
      if (racing_connect) {
        race.connect_race = true;
        ++record_.connect_races;
        worker_.probe.connect_race("sent");
      } else {
        ++record_.hedges;
        worker_.probe.hedge("sent");
      }
      race.started[1] = true;
      ++slots->running;
      spawn(executor, hedge_child(*second, true, second_trial, &race, 1, slots), "hedged attempt");
    } else if (second_trial) {
      gen_->live.end_trial(*second, true);  // taken, not used
    }
  }
  while (slots->running > 0) {
    co_await slots->wake.wait();
  }
  cancellation_.waiting = nullptr;
  if (race.winner) {
    if (slots->results[1]) {
      const std::string_view verdict = *race.winner == 1 ? "won" : "lost";
      if (racing_connect) {
        worker_.probe.connect_race(verdict);
      } else {
        worker_.probe.hedge(verdict);
      }
      if (*race.winner == 1 && slots->results[0]->lost_race && !slots->results[0]->slow_connect) {
        gen_->live.record_race_lost(first, steady::now());  // slower despite its head start
      }
    }
    co_return std::move(*slots->results[*race.winner]);
  }
  // Neither reached the client: the later failure speaks for both, unless it only gave way to
  // the other (a connect race decided before the winner failed on its own).
  if (slots->results[1] && (!slots->results[1]->lost_race || slots->results[0]->lost_race)) {
    co_return std::move(*slots->results[1]);
  }
  co_return std::move(*slots->results[0]);
}

std::optional<milliseconds> request_forwarder::connect_race_delay() const {
  // A continuation's body is built per attempt into one buffer: two at once would share it.
  if (continuing_ || cfg_.routing.connect_race.count() == 0 || cfg_.upstreams.size() < 2) {
    return std::nullopt;
  }
  return cfg_.routing.connect_race;
}

std::optional<milliseconds> request_forwarder::hedge_delay_for(std::size_t upstream) const {
  if (continuing_ || cfg_.upstreams.size() < 2) {
    return std::nullopt;
  }
  std::optional<milliseconds> fixed;
  bool wanted = false;
  if (const auto h = req_.find("x-nines-hedge");
      h != req_.end() && (cfg_.hedge.allow_client_header || kind_.may_hedge)) {
    const std::string_view v = h->value();
    if (v == "off") {
      return std::nullopt;
    }
    wanted = true;
    if (v != "on") {
      const auto ms = core::parse_count(v);
      if (!ms) {
        return std::nullopt;
      }
      fixed = milliseconds(*ms);
    }
  } else {
    const std::string_view target = req_.target();
    for (const auto& route : cfg_.hedge.routes) {
      wanted = wanted || (route == "chat" && target.starts_with("/v1/chat/completions")) ||
               (route == "completions" && target.starts_with("/v1/completions")) ||
               (route == "embeddings" && target.starts_with("/v1/embeddings"));
    }
  }
  if (!wanted) {
    return std::nullopt;
  }
  // The time by which another upstream would most likely have answered: the shortest of the
  // upstreams' observed p95 times to first byte. (An upstream's own p95 would never hedge one
  // that is always slow.)
  auto delay = core::hedge_delay(*pools_->ttfb[upstream], cfg_.hedge.delays, fixed);
  if (!fixed) {
    for (std::size_t i = 0; i < pools_->ttfb.size(); ++i) {
      if (i != upstream && pools_->ttfb[i]->size() >= cfg_.hedge.delays.min_samples) {
        delay = std::min(delay, core::hedge_delay(*pools_->ttfb[i], cfg_.hedge.delays));
      }
    }
  }
  return delay;
}

awaitable<void> request_forwarder::end_incomplete(const std::string& why) {
  record_.outcome = "stream_incomplete";
  record_.detail = why;
  if (kind_.dialect == core::stream_dialect::opaque) {
    // A protocol nines does not speak: no event of its own, the transfer is cut.
    client_.break_stream();
    co_return;
  }
  auto end = core::make_incomplete_event(
      kind_.dialect,
      fmt::format("the upstream stream broke after the response started and could not be "
                  "continued ({}); the answer is incomplete",
                  why),
      committed_.responses.last_sequence());
  core::sse_event event;
  event.type = std::move(end.type);
  event.data = std::move(end.data);
  std::string out;
  append_event(out, event, committed_);  // with our id like every other event
  co_await client_.finish_stream(out);
}

awaitable<void> request_forwarder::answer_all_failed(const std::optional<kept_response>& kept,
                                                     const attempt_result& last,
                                                     const std::string& why) {
  record_.outcome = "failed";
  record_.detail = why;
  if (kept && stopped_by_ != stop_reason::overflow) {
    // The last upstream's own answer (a 503 or a 429 with its Retry-After) tells the client most.
    http::response<http::string_body> res{static_cast<http::status>(kept->status), 11};
    for (const auto& h : kept->headers) {
      res.base().insert(h.name(), h.name_string(), h.value());
    }
    res.set("x-request-id", record_.id);
    res.body() = kept->body;
    record_.status = kept->status;
    co_await client_.send(std::move(res));
    co_return;
  }
  http::response<http::string_body> res;
  if (stopped_by_ == stop_reason::overflow || last.overflow) {
    // Every upstream is at its concurrency limit: a clear, retryable refusal, never a queue.
    res = http::response<http::string_body>{http::status::service_unavailable, 11};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::retry_after, "1");
    res.body() = core::openai_error_body("server_overloaded", why, "upstream_limit_reached");
  } else if (stopped_by_ == stop_reason::budget) {
    res = http::response<http::string_body>{http::status::service_unavailable, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = core::openai_error_body("upstream_unavailable",
                                         "no upstream could serve the request and the retry "
                                         "budget is exhausted: " + why,
                                         "retry_budget_exhausted");
  } else {
    const bool timeout = last.failure == attempt_failure::first_byte_timeout ||
                         last.failure == attempt_failure::connect_timeout;
    const auto status = timeout ? http::status::gateway_timeout : http::status::bad_gateway;
    res = json_error_response(11, status, "upstream_unavailable",
                              "no upstream could serve the request: " + why);
  }
  res.set("x-request-id", record_.id);
  record_.status = res.result_int();
  co_await client_.send(std::move(res));
}

// Prepares to continue a stream that broke after the client got part of it, or ends it: with
// [DONE] when only the end was lost, with the stream_incomplete event when it cannot be continued.
// Returns true when the attempt loop is to go on with continuations.
awaitable<bool> request_forwarder::begin_resume(std::string_view from, core::stream_break cause,
                                                const std::string& why) {
  auto& progress = committed_.progress;
  const bool responses = kind_.dialect == core::stream_dialect::responses;
  if (progress.finished) {
    // Only the end was lost (a continuation's finish reached the client).
    std::string done;
    if (responses) {
      std::vector<core::sse_event> end;
      committed_.responses.complete(progress, end);
      if (end.empty()) {
        co_await end_incomplete(why + "; " + committed_.responses.unsupported_why());
        co_return false;
      }
      append_events(done, end, committed_);
    } else {
      append_data_event(done, "[DONE]", committed_);
    }
    co_await client_.finish_stream(done);
    co_return false;
  }
  const bool resumable = kind_.route == core::api_route::chat_completions ||
                         kind_.route == core::api_route::completions ||
                         (responses && committed_.responses.created());
  const bool unsupported = progress.unsupported || (responses && committed_.responses.unsupported());
  if (!resumable || unsupported || progress.resumes >= cfg_.retry.max_resumes) {
    const std::string reason =
        why + (!resumable       ? "; this route cannot be continued"
               : !unsupported   ? "; resumes exhausted"
               : progress.unsupported ? "; " + progress.unsupported_why
                                      : "; " + committed_.responses.unsupported_why());
    co_await end_incomplete(reason);
    co_return false;
  }
  if (responses && responses_as_chat_.empty()) {
    // Continued through chat: the request in its chat form, once (or never: no exact form).
    std::string no_form;
    auto chat = core::responses_as_chat(req_.body(), no_form);
    if (!chat) {
      co_await end_incomplete(why + "; " + no_form);
      co_return false;
    }
    responses_as_chat_ = std::move(*chat);
  }
  committed_.held.clear();  // the client never saw them; the continuation makes the call again
  committed_.held_bytes = 0;
  committed_.responses.begin_continuation();
  ++progress.resumes;
  ++record_.resumes;
  progress.carried_tokens = progress.tokens_produced();
  // The previous resume_log entry was closed when its continuation reached the client.
  std::string entry = record_.resume_log.empty() ? "{\"cause\":" : ",{\"cause\":";
  core::append_json_string(entry, why);
  entry += fmt::format(",\"from\":\"{}\",\"carried_tokens\":{}", from, progress.tokens_produced());
  record_.resume_log += entry;
  gap_pending_ = true;
  pending_cause_ = cause;
  pending_from_ = std::string(from);
  continuing_ = true;
  // Attempts start afresh; `tried` keeps every upstream this request used, so a chain of breaks
  // moves on to fresh upstreams.
  attempts_at_resume_ = record_.attempts;
  co_return true;
}

awaitable<void> request_forwarder::run() {
  ++worker_.active_requests;
  struct active_guard {
    worker_state& w;
    ~active_guard() { --w.active_requests; }
  } guard{worker_};
  std::uint64_t tried = 0;
  std::uint64_t credentials_refused = 0;  // upstreams that refused every credential tried
  std::uint64_t cannot_continue = 0;  // upstreams whose settings refuse this continuation
  std::optional<std::size_t> previous;
  attempt_result last;
  std::optional<kept_response> kept;
  std::string history;
  if (takeover_ != nullptr) {
    // Another replica's stream, whose producer stopped: continued as if it had broken here.
    if (!seed_from_journal(*takeover_)) {
      co_await client_.end_stream();  // its final event was journaled already: only the end
      co_return;
    }
    history = "the replica producing the stream stopped (its lease in the shared journal ran out)";
    if (!co_await begin_resume("takeover", core::stream_break::stall, history)) {
      co_return;
    }
    deadline_ = steady::now() + cfg_.retry.deadline;
  }
  const auto none = std::make_shared<const routing_snapshot>();
  for (;;) {
    auto routing = gen_->routing.load();
    if (!routing) {
      routing = none;
    }
    const auto now = steady::now();
    auto c = candidates(*routing);
    bool trial = false;
    const auto chosen = choose(c, tried, previous.has_value(), *routing, trial);
    if (!chosen) {
      // Only upstreams at their concurrency limit are left: refuse now rather than queue.
      stopped_by_ = stop_reason::overflow;
      std::string limits;
      for (std::size_t i = 0; i < cfg_.upstreams.size(); ++i) {
        if (cfg_.upstreams[i].max_requests > 0) {
          limits += fmt::format("{}{}: max_requests ({}) in flight", limits.empty() ? "" : ", ",
                                cfg_.upstreams[i].name, cfg_.upstreams[i].max_requests);
        }
      }
      history += fmt::format("{}every upstream is at its limit ({})", history.empty() ? "" : "; ",
                             limits);
      worker_.probe.overflow("max_requests");
      break;
    }
    const auto release_trial = [&] {
      if (trial) {
        gen_->live.end_trial(*chosen, true);  // taken, not used
      }
    };
    if (*chosen < 64 && (cannot_continue >> *chosen & 1U) != 0) {
      // The only upstream left cannot continue this stream either (its resume settings).
      history += " (no upstream left that can continue it)";
      release_trial();
      break;
    }
    if (*chosen < 64 && (credentials_refused >> *chosen & 1U) != 0) {
      // Every credential of the only upstream left refused this request: another round would
      // only be refused again. The client gets the upstream's own answer.
      history += " (every credential was refused)";
      release_trial();
      break;
    }
    // A retry is charged to the budget when the failure said "overloaded" (a retryable status
    // such as 503, or no first byte in time): retrying those is how a storm starts. A refused
    // connection, or one that dropped (a crash, a restart), is not charged: that work was lost,
    // and replacing it adds no load.
    const bool charged = previous && !last.overflow &&
                         (last.failure == attempt_failure::retryable_status ||
                          last.failure == attempt_failure::first_byte_timeout);
    if (previous) {
      const auto plan = core::plan_next_attempt(cfg_.retry.policy, last.failure,
                                                record_.attempts - attempts_at_resume_,
                                                deadline_ - now, last.retry_after,
                                                *chosen == *previous, worker_.random);
      if (!plan.retry) {
        history += fmt::format(" ({})", plan.why_not);
        release_trial();
        break;
      }
      if (charged && !core::retry_allowed(cfg_.retry.budget, worker_.active_requests,
                                          worker_.active_retries)) {
        // Retries are already a large share of the work: fail fast instead of piling on.
        stopped_by_ = stop_reason::budget;
        history += " (retry budget exhausted)";
        worker_.probe.retry_budget_exhausted();
        release_trial();
        break;
      }
      worker_.probe.retry(*chosen != *previous);
      if (plan.delay.count() > 0) {
        wakeup backoff(co_await asio::this_coro::executor);
        cancellation_.waiting = &backoff;
        co_await backoff.wait(steady::now() + plan.delay);
        cancellation_.waiting = nullptr;
      }
      if (cancellation_.client_gone) {
        release_trial();
        break;
      }
    }
    if (*chosen < 64) {
      tried |= std::uint64_t{1} << *chosen;
    }
    ++record_.attempts;
    record_.upstreams.push_back(cfg_.upstreams[*chosen].name);
    const auto hedge_delay = previous ? std::nullopt : hedge_delay_for(*chosen);
    const auto connect_race = previous ? std::nullopt : connect_race_delay();
    if (hedge_delay || connect_race) {
      last = co_await hedged_attempt(*chosen, trial, hedge_delay, connect_race, tried, *routing);
    } else {
      last = co_await run_attempt(*chosen, charged, trial, nullptr, 0);
    }
    if (last.client_left) {
      break;  // cancelled mid-attempt: answered below as a request its client gave up
    }
    if (last.end == phase::finished || last.end == phase::failed) {
      co_return;
    }
    if (cancellation_.client_gone) {
      break;
    }
    if (last.end == phase::relaying) {
      // The stream broke after the client got part of it.
      history = last.detail;
      if (!co_await begin_resume(cfg_.upstreams[*chosen].name, last.cause, history)) {
        co_return;
      }
      deadline_ = steady::now() + cfg_.retry.deadline;
      previous.reset();
      last = attempt_result{};
      kept.reset();
      continue;
    }
    history += fmt::format("{}{}: {} ({})", history.empty() ? "" : "; ",
                           cfg_.upstreams[*chosen].name,
                           last.overflow ? "pool_overflow" : core::to_string(last.failure),
                           last.detail);
    previous = chosen;
    if (last.failure == attempt_failure::credential_rejected && *chosen < 64) {
      credentials_refused |= std::uint64_t{1} << *chosen;
    }
    if (last.failure == attempt_failure::not_continuable && *chosen < 64) {
      cannot_continue |= std::uint64_t{1} << *chosen;
    }
    if (last.response) {
      kept = std::move(last.response);  // the most recent upstream answer wins
    }
  }
  if (cancellation_.client_gone) {
    // Nobody to answer; what was in flight for it has been closed.
    record_.outcome = "client_closed";
    record_.detail = "the client left before its answer was complete";
    if (!client_committed_) {
      record_.status = 499;  // nginx's convention for a request its client gave up
    }
    co_return;
  }
  if (continuing_) {
    co_await end_incomplete(history);
    co_return;
  }
  co_await answer_all_failed(kept, last, history);
}

request_kind classify_request(core::api_route route) {
  request_kind kind;
  kind.route = route;
  kind.openai_json = route == core::api_route::chat_completions ||
                     route == core::api_route::completions || route == core::api_route::embeddings;
  kind.chat = route == core::api_route::chat_completions;
  kind.dialect = core::dialect_of(route);
  return kind;
}

awaitable<void> run_attempts(request& req, net::response_sink& sink, worker_state& worker,
                             obs::request_record& record, std::string stream_key, request_kind kind,
                             const stream_takeover* takeover) {
  request_forwarder forwarder(req, sink, worker, record, std::move(stream_key), kind, takeover);
  if (sink.departed()) {
    record.outcome = "client_closed";
    record.status = 499;
    co_return;
  }
  struct registration {
    net::response_sink& sink;
    ~registration() { sink.on_departure(nullptr); }
  } registered{sink};
  sink.on_departure(&forwarder);
  co_await forwarder.run();
}

namespace {

// Client-key checks (core/access/admission.hpp): nullopt when the request may go on. With
// `keys_read`, against those keys (what the answer cache read the request's identity with).
std::optional<core::access_refusal> check_access(
    const request& req, worker_state& worker, const core::json_facts* facts,
    core::access_ticket& ticket,
    const std::shared_ptr<const core::key_registry>* keys_read = nullptr) {
  const auto keys = keys_read != nullptr ? *keys_read : worker.shared->keys.load();
  if (!keys) {
    return std::nullopt;  // auth.mode = open
  }
  const auto it = req.find(http::field::authorization);
  std::string_view authorization =
      it == req.end() ? std::string_view{} : std::string_view(it->value());
  if (req.count(http::field::authorization) > 1) {
    authorization = "ambiguous";  // two credentials: which would a server behind us read? refused
  }
  std::optional<std::string_view> model;
  if (facts != nullptr && facts->model) {
    model = *facts->model;
  }
  const auto estimate = facts != nullptr && facts->max_tokens
                            ? *facts->max_tokens
                            : worker.gen->config->auth.default_token_reservation;
  return core::admit(keys, authorization, model, estimate, std::chrono::system_clock::now(),
                     steady::now(), ticket);
}

// x-nines-heartbeat-ms: milliseconds from 100 to 60000, given once; anything else is refused
// (a value nines would have to guess at).
struct heartbeat_request {
  bool ok = true;
  std::optional<milliseconds> every;
  std::string problem;
};
heartbeat_request read_heartbeat_request(const request& req) {
  heartbeat_request out;
  const auto [first, last] = req.equal_range("x-nines-heartbeat-ms");
  if (first == last) {
    return out;
  }
  const auto ms = core::parse_count(first->value());
  if (std::next(first) != last || !ms || *ms < 100 || *ms > 60000) {
    out.ok = false;
    out.problem = "x-nines-heartbeat-ms must be given once, as milliseconds from 100 to 60000";
    return out;
  }
  out.every = milliseconds(*ms);
  return out;
}

awaitable<void> refuse_access(downstream& client, obs::request_record& record,
                              const core::access_refusal& refusal) {
  record.outcome = "rejected";
  record.status = refusal.status;
  record.detail = refusal.code;
  http::response<http::string_body> res{static_cast<http::status>(refusal.status),
                                        client.version()};
  res.set(http::field::content_type, "application/json");
  for (const auto& [name, value] : refusal.headers) {
    res.set(name, value);
  }
  res.body() = core::openai_error_body(refusal.type, refusal.message, refusal.code);
  co_await client.send(std::move(res));
}

}  // namespace

awaitable<void> forward_request(request& req, downstream& client, worker_state& worker,
                                obs::request_record& record, core::api_route route) {
  auto kind = classify_request(route);
  if (worker.shared->cache) {
    client.stamp("x-nines-cache", "bypass");  // until the cache says otherwise
    record.cache = "bypass";
  }
  // A finished upload named by Nines-Upload is the body (gateway/upload_endpoint.hpp).
  auto upload = take_upload_body(req, worker, kind.openai_json);
  if (upload.refusal) {
    record.outcome = "rejected";
    record.status = upload.refusal->status;
    record.detail = upload.refusal->code;
    auto res = json_error_response(req.version(), static_cast<http::status>(upload.refusal->status),
                                   upload.refusal->status == 401 ? "authentication_error"
                                                                 : "invalid_request_error",
                                   upload.refusal->message, upload.refusal->code);
    co_await client.send(std::move(res));
    co_return;
  }
  // The answer cache first (gateway/answer_cache_relay.hpp): a hit is found by the body's digest,
  // without reading the body again.
  const auto cache = plan_cache(req, client, worker, kind, upload.held());
  const auto hit = look_up_answer(worker, cache, req);
  core::json_facts hit_facts;
  if (hit) {
    hit_facts = facts_of(*hit->answer);
  } else if (cache.only_if_cached) {
    // RFC 9111 §5.2.1.7: nothing kept for it, and the client wants nothing else.
    record.outcome = "rejected";
    record.status = 504;
    record.detail = "not_cached";
    auto res = json_error_response(req.version(), http::status::gateway_timeout,
                                   "invalid_request_error",
                                   "Cache-Control: only-if-cached, and no answer to this request "
                                   "is kept",
                                   "not_cached");
    co_await client.send(std::move(res));
    co_return;
  }
  std::optional<core::json_probe_result> probe;
  if (!hit && (kind.openai_json ||
               ((route == core::api_route::responses || route == core::api_route::messages) &&
                req.method() == http::verb::post))) {
    // Checked once here, with a validating scan (no DOM): invalid JSON never reaches an upstream
    // on the routes nines knows.
    probe = core::probe_json(req.body());
    if (kind.openai_json && (!probe->valid || !probe->facts.is_object)) {
      record.outcome = "rejected";
      record.status = 400;
      const std::string why = probe->valid ? "the request body must be a JSON object" : probe->error;
      auto res = json_error_response(req.version(), http::status::bad_request,
                                     "invalid_request_error", why);
      co_await client.send(std::move(res));
      co_return;
    }
    record.stream = probe->facts.stream.value_or(false);
  }
  core::access_ticket ticket;
  const auto* facts = hit ? &hit_facts : probe && probe->valid ? &probe->facts : nullptr;
  if (const auto refusal =
          check_access(req, worker, facts, ticket, cache.key ? &cache.keys : nullptr)) {
    worker.probe.auth_refused(refusal->reason);
    co_await refuse_access(client, record, *refusal);
    co_return;
  }
  if (worker.limits && ticket.key() != nullptr) {
    // The key's per-minute limits across replicas (auth.shared_limits).
    std::optional<core::access_refusal> shared_refusal =
        co_await worker.shared->limits->admit(*worker.limits, ticket);
    if (shared_refusal) {
      worker.probe.auth_refused(shared_refusal->reason);
      co_await refuse_access(client, record, *shared_refusal);
      co_return;
    }
  }
  if (const auto* key = ticket.key()) {
    record.key_id = key->id;
    kind.client_key = true;
    kind.may_hedge = key->allow_hedge;
    kind.may_journal = key->allow_journal;
    if (ticket.limits_tokens()) {
      kind.ticket = &ticket;
    }
  }
  if (const auto beat = read_heartbeat_request(req); !beat.ok) {
    record.outcome = "rejected";
    record.status = 400;
    auto res = json_error_response(req.version(), http::status::bad_request,
                                   "invalid_request_error", beat.problem, "invalid_heartbeat");
    co_await client.send(std::move(res));
    co_return;
  } else {
    kind.heartbeat = beat.every;
  }
  const auto& cfg = *worker.gen->config;
  if (hit) {
    ticket.settle_tokens(0, steady::now());  // no upstream worked for it
    co_await replay_answer(client, record, *hit);
    co_return;
  }
  std::optional<answer_keeping> keeping;
  if (cache.key && facts != nullptr && core::answer_is_repeatable(*facts)) {
    // Not looked up (no-cache): generated afresh, and kept; still a bypass to the client.
    keeping = answer_keeping{*cache.key, core::answer_request::of(cache.view(req)), *facts,
                             cache.look, cache.epoch};
    if (cache.look) {
      client.stamp("x-nines-cache", "miss");
      record.cache = "miss";
    }
  }
  // Journaling by header (mode keyed) is a key's right; mode all is the operator's own choice.
  const bool journalable = kind.openai_json || kind.dialect == core::stream_dialect::responses;
  const bool may_detach = kind.may_journal || cfg.journal.mode == core::journal_mode::all;
  if (keeping && may_detach) {
    // Through the journal, so that identical requests in flight share this generation (which
    // goes on when its client leaves: a key's right, as journaling is).
    kind.ticket = nullptr;  // as below: the generation may outlive this request
    co_await serve_journaled(req, client, worker, record, kind, &*keeping);
  } else if (keeping) {
    // Straight to the client, recorded on the way.
    answer_recorder recorder(client, worker, std::move(*keeping), record);
    co_await run_attempts(req, recorder, worker, record, record.id, kind);
  } else if (journalable && wants_journal(req, cfg) &&
      (kind.may_journal || cfg.journal.mode == core::journal_mode::all)) {
    // The generation may outlive this request, and its ticket with it: it settles nothing (the
    // reservation stands).
    kind.ticket = nullptr;
    co_await serve_journaled(req, client, worker, record, kind);
  } else {
    co_await run_attempts(req, client, worker, record, record.id, kind);
  }
  if (record.usage_tokens) {
    ticket.settle_tokens(*record.usage_tokens, steady::now());  // unless settled already
  }
  if (client.finished() && record.status / 100 == 2) {
    upload_served(upload);  // it was the body of a request that got its answer
  }
}

}  // namespace nines::gateway
