#include "gateway/answer_cache_relay.hpp"

#include <chrono>

#include "core/access/admission.hpp"
#include "core/cache/cache_control.hpp"
#include "core/http/ascii.hpp"
#include "core/http/sse_parser.hpp"
#include "core/json/json_probe.hpp"
#include "gateway/http_headers.hpp"

namespace nines::gateway {
namespace {

using namespace net;
using steady = std::chrono::steady_clock;

std::string_view path_of(std::string_view target) {
  return target.substr(0, target.find('?'));
}

// Kept requests a body is compared with as it arrives, at most: all of those with its head and
// length (answer_cache::per_key). Most drop out at the first piece (prompts that differ differ
// early); one that differs only at the end costs its own client's compare.
constexpr std::size_t max_candidates = core::answer_cache::per_key;

bool keeps_answers_of(core::api_route route) {
  return route == core::api_route::chat_completions || route == core::api_route::completions;
}

// Response fields that belong to one exchange, not to the answer: framing, the request's own ids,
// the hop's heartbeats, rate-limit counts of the moment, cookies, and the cache's own.
bool of_this_exchange(std::string_view name) {
  for (const auto* n : {"content-length", "transfer-encoding", "connection", "keep-alive", "date",
                        "x-request-id", "x-nines-heartbeat-ms", "x-nines-cache", "set-cookie",
                        "age", "retry-after", "openai-processing-ms", "server-timing", "cf-ray",
                        "x-envoy-upstream-service-time", "traceparent"}) {
    if (core::iequals(name, n)) {
      return true;
    }
  }
  return name.size() >= 12 && core::iequals(name.substr(0, 12), "x-ratelimit-");
}

// application/json, or a +json type, with or without parameters.
bool is_json_media(std::string_view value) {
  auto type = value.substr(0, value.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) {
    type.remove_suffix(1);
  }
  return core::iequals(type, "application/json") ||
         (type.size() > 5 && core::iequals(type.substr(type.size() - 5), "+json"));
}

template <class Body>
void apply_kept(const core::cached_answer& a, http::response<Body>& res,
                const obs::request_record& record, std::chrono::milliseconds age) {
  for (const auto& [name, value] : a.fields) {
    res.insert(name, value);
  }
  res.set("x-request-id", record.id);
  res.set(http::field::age, std::to_string(age.count() / 1000));
}

}  // namespace

std::unique_ptr<net::body_watch> watch_cacheable_body(
    const shared_state& shared, const request& head, std::optional<std::uint64_t> declared_length) {
  if (!shared.cache || head.method() != http::verb::post) {
    return nullptr;
  }
  const auto path = path_of(head.target());
  if (path != "/v1/chat/completions" && path != "/v1/completions") {
    return nullptr;
  }
  if (head.find("last-event-id") != head.end()) {
    return nullptr;  // a reconnect: the journal's
  }
  core::cache_directives asked;
  for (const auto& f : head) {
    if (f.name() == http::field::cache_control) {
      core::read_cache_control(f.value(), asked);
    } else if (f.name() == http::field::pragma) {
      core::read_pragma(f.value(), asked);
    }
  }
  if (asked.no_store) {
    return nullptr;
  }
  // Who asks: a client key's id. Without keys (an open listener, loopback only), the
  // Authorization that then goes upstream counts among the headers instead.
  cache_plan plan;
  plan.epoch = shared.cache->epoch();  // before the keys: a reload stores them, then clears
  const auto keys = shared.keys.load();
  plan.keys = keys;
  if (keys) {
    const core::client_key* key = nullptr;
    if (head.count(http::field::authorization) != 1 ||
        core::identify(*keys, head[http::field::authorization], std::chrono::system_clock::now(),
                       key)) {
      return nullptr;  // refused later, as it would be
    }
    plan.identity = key->id;
  }
  append_answer_headers(head.base(), plan.headers, !keys);
  plan.look = !asked.no_cache;
  if (asked.max_age) {
    plan.max_age = std::chrono::seconds(*asked.max_age);
  }
  plan.only_if_cached = asked.only_if_cached;
  // The kept requests this one may turn out to be: same head, same length (a chunked body's is
  // known only at its end; it is then compared at the lookup).
  core::body_candidates candidates;
  if (plan.look && declared_length) {
    const auto key = core::answer_lookup_key(plan.view(head), *declared_length);
    candidates =
        core::body_candidates(shared.cache->candidates(key, *declared_length, max_candidates));
  }
  return std::make_unique<cache_watch>(std::move(plan), std::move(candidates));
}

cache_plan plan_cache(const request& req, const downstream& client, worker_state& worker,
                      const request_kind& kind, bool body_from_upload) {
  const auto* watch = dynamic_cast<const cache_watch*>(client.watched_body());
  if (!worker.shared->cache || watch == nullptr || !keeps_answers_of(kind.route) ||
      body_from_upload) {
    return {};
  }
  cache_plan plan = watch->plan();
  plan.key = core::answer_lookup_key(plan.view(req), req.body().size());
  plan.body_match = watch->body_match();
  return plan;
}

std::optional<core::answer_cache::hit> look_up_answer(worker_state& worker, const cache_plan& plan,
                                                      const request& req) {
  if (!plan.look || !plan.key) {
    return std::nullopt;
  }
  auto hit =
      worker.shared->cache->lookup(*plan.key, plan.view(req), steady::now(), plan.body_match);
  if (hit && plan.max_age && hit->age > *plan.max_age) {
    return std::nullopt;  // older than the client takes: generated afresh (and kept)
  }
  return hit;
}

core::json_facts facts_of(const core::cached_answer& answer) {
  core::json_facts facts;
  facts.is_object = true;
  facts.stream = answer.stream;
  facts.model = answer.model;
  facts.max_tokens = answer.max_tokens;
  facts.temperature = 0.0;
  return facts;
}

awaitable<void> replay_answer(downstream& client, obs::request_record& record,
                              const core::answer_cache::hit& hit) {
  const auto& a = *hit.answer;
  record.status = a.status;
  record.stream = a.stream;
  record.cache = "hit";
  client.stamp("x-nines-cache", "hit");
  if (!a.stream) {
    http::response<http::string_body> res{static_cast<http::status>(a.status), client.version()};
    apply_kept(a, res, record, hit.age);
    res.body() = a.body;
    co_await client.send(std::move(res));
    co_return;
  }
  http::response<http::empty_body> header{static_cast<http::status>(a.status), client.version()};
  apply_kept(a, header, record, hit.age);
  if (co_await client.begin_stream(std::move(header))) {
    co_return;
  }
  co_await client.finish_stream(a.body);
}

// The recorder.

void answer_recorder::record_head(const http::response_header<>& head, bool stream) {
  headed_ = true;
  answer_.status = head.result_int();
  answer_.stream = stream;
  for (const auto& f : head) {
    if (!of_this_exchange(f.name_string())) {
      answer_.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
  }
}

void answer_recorder::record_body(std::string_view data) {
  if (too_large_ || answer_.status != 200) {
    return;  // (a non-200 is not kept)
  }
  if (answer_.body.size() + data.size() > worker_.shared->cache->settings().max_entry_bytes) {
    too_large_ = true;
    answer_.body.clear();
    answer_.body.shrink_to_fit();
    return;
  }
  answer_.body.append(data);
}

void answer_recorder::keep() {
  if (kept_) {
    return;
  }
  kept_ = true;
  auto& cache = *worker_.shared->cache;
  if (too_large_) {
    cache.count_too_large();
    return;
  }
  if (!headed_ || answer_.status != 200 || record_.outcome != "ok") {
    return;
  }
  core::cache_directives said;
  bool json = false;
  for (const auto& [name, value] : answer_.fields) {
    if (core::iequals(name, "cache-control")) {
      core::read_cache_control(value, said);
    } else if (core::iequals(name, "content-type")) {
      json = is_json_media(value);
    }
  }
  if (said.no_store) {
    return;  // its server said so
  }
  if (!answer_.stream) {
    const auto probe = core::probe_json(answer_.body);
    if (!json || !probe.valid || !probe.facts.is_object || probe.facts.has_error) {
      return;  // a 200 that is not an answer (an error object, or not JSON)
    }
  }
  core::cached_answer kept = std::move(answer_);
  if (kept.stream) {
    kept.body = core::without_event_ids(kept.body);
  }
  kept.model = keeping_.facts.model;
  kept.max_tokens = keeping_.facts.max_tokens;
  cache.store(keeping_.key, std::move(keeping_.request), std::move(kept), steady::now(),
              keeping_.epoch);
}

awaitable<error_code> answer_recorder::send(http::response<http::string_body> res) {
  record_head(res.base(), false);
  record_body(res.body());
  keep();
  co_return co_await inner_.send(std::move(res));
}

awaitable<error_code> answer_recorder::begin_stream(http::response<http::empty_body> header) {
  record_head(header.base(), true);
  co_return co_await inner_.begin_stream(std::move(header));
}

awaitable<error_code> answer_recorder::write_chunk(std::string_view data) {
  record_body(data);
  co_return co_await inner_.write_chunk(data);
}

awaitable<error_code> answer_recorder::end_stream() {
  keep();
  co_return co_await inner_.end_stream();
}

awaitable<error_code> answer_recorder::finish_stream(std::string_view data) {
  record_body(data);
  keep();
  co_return co_await inner_.finish_stream(data);
}

void answer_recorder::break_stream() {
  kept_ = true;  // cut: nothing to keep
  inner_.break_stream();
}

}  // namespace nines::gateway
