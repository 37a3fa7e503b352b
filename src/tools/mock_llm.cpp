#include "tools/mock_llm.hpp"

#include <algorithm>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <map>
#include <fmt/format.h>
#include <mutex>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <thread>

#include "core/access/secret_digest.hpp"
#include "core/random.hpp"
#include "core/config/config.hpp"
#include "core/json/json_text.hpp"
#include "core/config/key_values.hpp"
#include "core/tools/mock_model.hpp"
#include "core/tools/mock_messages.hpp"
#include "core/tools/mock_responses.hpp"
#include "core/http/openai_error.hpp"
#include "net/http_wire.hpp"
#include "net/server_group.hpp"

namespace nines::tools {
namespace {

using namespace net;
namespace json = boost::json;
using std::chrono::milliseconds;

// Process-wide state shared by the mock's workers.
struct mock_state {
  mock_options options;
  std::mutex mutex;
  mock_faults faults;  // guarded by mutex
  std::string last_headers = "{}";  // the last /v1 request's headers as JSON, guarded by mutex
  std::atomic<std::uint64_t> requests{0}, streams{0}, errors_503{0}, errors_429{0},
      continuations{0}, completed{0}, broken{0}, aborted{0}, health_checks{0}, token_requests{0},
      unauthorized{0};
  std::map<std::string, std::chrono::steady_clock::time_point> tokens;  // issued; guarded by mutex
  std::uint64_t tokens_issued = 0;                                       // guarded by mutex

  // Whether `authorization` carries a key or an unexpired token this mock accepts.
  bool authorized(std::string_view authorization) {
    if (options.accept_keys.empty() && options.token_ttl_s == 0) {
      return true;
    }
    if (!authorization.starts_with("Bearer ")) {
      return false;
    }
    const std::string secret(authorization.substr(7));
    if (std::find(options.accept_keys.begin(), options.accept_keys.end(), secret) !=
        options.accept_keys.end()) {
      return true;
    }
    std::lock_guard lock(mutex);
    const auto it = tokens.find(secret);
    return it != tokens.end() && std::chrono::steady_clock::now() < it->second;
  }

  mock_faults current_faults() {
    std::lock_guard lock(mutex);
    return faults;
  }
};

struct mock_worker {
  mock_state& state;
  core::splitmix_rng random;
  std::uint64_t counter = 0;
};

http::response<http::string_body> json_response(unsigned version, http::status status,
                                                std::string body) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

std::string stats_json(mock_state& s) {
  json::object o;
  o["requests"] = s.requests.load();
  o["streams"] = s.streams.load();
  o["errors_503"] = s.errors_503.load();
  o["errors_429"] = s.errors_429.load();
  o["continuations"] = s.continuations.load();
  o["completed"] = s.completed.load();
  o["broken"] = s.broken.load();
  o["aborted"] = s.aborted.load();  // streams whose client went away before their end
  o["health_checks"] = s.health_checks.load();
  o["token_requests"] = s.token_requests.load();
  o["unauthorized"] = s.unauthorized.load();
  return json::serialize(o);
}

std::string faults_from_json(const json::value& v, mock_faults& f) {
  const auto* o = v.if_object();
  if (o == nullptr) {
    return "faults must be a JSON object";
  }
  mock_faults next;
  std::string parts;
  for (const auto& [k, val] : *o) {
    std::string value;
    if (val.is_string()) {
      value = std::string(val.get_string());
    } else if (val.is_double()) {
      value = fmt::format("{}", val.get_double());  // 20.0 is "20", as a count must be written
    } else if (val.is_number() || val.is_bool()) {
      value = json::serialize(val);
    } else if (val.is_null()) {
      continue;
    } else {
      return fmt::format("'{}' must be a number", std::string_view(k));
    }
    parts += fmt::format("{}{}={}", parts.empty() ? "" : ",", std::string_view(k), value);
  }
  if (auto err = parse_mock_faults(parts, next); !err.empty()) {
    return err;
  }
  f = next;
  return {};
}

json::object usage_of(const core::mock_plan& plan) {
  const std::size_t completion = plan.end_token - plan.first_token;
  json::object usage;
  usage["prompt_tokens"] = plan.prompt_tokens;
  usage["completion_tokens"] = completion;
  usage["total_tokens"] = plan.prompt_tokens + completion;
  return usage;
}

std::string usage_chunk_json(bool chat, const core::mock_plan& plan, const std::string& id,
                             std::int64_t created, const std::string& model) {
  json::object o;
  o["id"] = id;
  o["object"] = chat ? "chat.completion.chunk" : "text_completion";
  o["created"] = created;
  o["model"] = model;
  o["choices"] = json::array{};
  o["usage"] = usage_of(plan);
  return json::serialize(o);
}

std::string whole_answer_json(bool chat, const core::mock_plan& plan, const std::string& id,
                              std::int64_t created, const std::string& model,
                              const std::string& reasoning_field) {
  const auto output = core::mock_output_text(plan);
  const std::string& text = output.answer;
  json::object choice;
  choice["index"] = 0;
  if (chat) {
    json::object message;
    message["role"] = "assistant";
    if (!output.thought.empty()) {
      if (reasoning_field != "reasoning") {
        message["reasoning_content"] = output.thought;
      }
      if (reasoning_field != "reasoning_content") {
        message["reasoning"] = output.thought;
      }
    }
    message["content"] = text;
    choice["message"] = std::move(message);
  } else {
    choice["text"] = text;
  }
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = plan.stopped_by_length ? "length" : "stop";
  json::object o;
  o["id"] = id;
  o["object"] = chat ? "chat.completion" : "text_completion";
  o["created"] = created;
  o["model"] = model;
  o["choices"] = json::array{std::move(choice)};
  o["usage"] = usage_of(plan);
  return json::serialize(o);
}

std::string models_json(const std::string& name) {
  json::object model;
  model["id"] = name;
  model["object"] = "model";
  model["owned_by"] = "nines";
  json::object o;
  o["object"] = "list";
  o["data"] = json::array{std::move(model)};
  return json::serialize(o);
}

std::string embedding_json(std::string_view input, const std::string& model) {
  const auto h = core::mock_text_hash(input);
  json::array vec;
  for (int i = 0; i < 8; ++i) {
    vec.push_back(static_cast<double>((h >> (i * 8)) & 0xff) / 255.0);
  }
  json::object item;
  item["object"] = "embedding";
  item["index"] = 0;
  item["embedding"] = std::move(vec);
  json::object o;
  o["object"] = "list";
  o["data"] = json::array{std::move(item)};
  o["model"] = model;
  return json::serialize(o);
}

class exchange {
 public:
  exchange(request& req, downstream& client, mock_worker& worker)
      : req_(req), client_(client), worker_(worker), state_(worker.state) {}

  awaitable<void> run();

 private:
  // The faults for this request: the mock's, or its x-mock-fault header's. False with `error`
  // when the header is malformed.
  bool request_faults(mock_faults& faults, std::string& error) const;
  // Starts a streamed answer (header, then the time to first token); false when the client left.
  awaitable<bool> open_stream(const mock_faults& faults);
  // Reads the body as JSON, plans its answer for `api` and takes the request's faults; returns
  // what is wrong with the request ("" when nothing).
  std::string read_request(core::mock_api api, std::size_t thought_tokens, json::value& parsed,
                           core::mock_plan& plan, mock_faults& faults) const;
  awaitable<void> generate(bool chat);
  awaitable<void> generate_response();
  awaitable<void> generate_message();
  awaitable<void> ticks();
  // Writes a stream's events, each a chunk, with the faults counted over the token events (a
  // cut_after sends half of the event). Returns true when the stream went out whole (the caller
  // then ends it).
  awaitable<bool> write_with_faults(const std::vector<core::mock_sse_event>& events,
                                    const mock_faults& faults);
  awaitable<void> issue_token();
  awaitable<void> stream(bool chat, const core::mock_plan& plan, const json::object& body,
                         const mock_faults& faults);
  // Call with a named body: GCC 12 mishandles temporaries in co_await full-expressions
  // (double destruction), so no coroutine call in this project takes one.
  awaitable<void> send(http::status status, std::string& body) {
    auto res = json_response(req_.version(), status, std::move(body));
    stamp_body_digest(res.base());
    co_await client_.send(std::move(res));
  }
  // With `x-mock-digest: sha256`, the answer says what body arrived ("sha256:<hex>"), for tests
  // of bodies that took another way (a tus upload).
  void stamp_body_digest(http::fields& f) const {
    if (const auto h = req_.find("x-mock-digest"); h != req_.end() && h->value() == "sha256") {
      f.set("x-mock-body-sha256", core::format_secret_digest(core::sha256_of(req_.body())));
    }
  }
  std::string chunk(bool chat, std::string_view text, const char* finish_reason,
                    bool role) const;
  std::string thought_chunk(std::string_view text) const;
  std::string tool_chunk(std::string_view tool_delta) const;
  // "data: {" and the fields every chunk of this answer shares, up to the choice's own.
  const std::string& prefix(bool chat) const;

  request& req_;
  downstream& client_;
  mock_worker& worker_;
  mock_state& state_;
  std::string id_;
  std::int64_t created_ = 0;
  std::string model_;
  mutable std::string chunk_prefix_;  // "data: {" up to the choice's fields, built once
};

// Built by hand from a per-request prefix: a benchmark's upstream must not be its bottleneck.
const std::string& exchange::prefix(bool chat) const {
  if (chunk_prefix_.empty()) {
    chunk_prefix_ = "data: {\"id\":";
    core::append_json_string(chunk_prefix_, id_);
    chunk_prefix_ += chat ? ",\"object\":\"chat.completion.chunk\"" : ",\"object\":\"text_completion\"";
    chunk_prefix_ += ",\"created\":" + std::to_string(created_) + ",\"model\":";
    core::append_json_string(chunk_prefix_, model_);
    chunk_prefix_ += ",\"choices\":[{\"index\":0,";
  }
  return chunk_prefix_;
}

std::string exchange::chunk(bool chat, std::string_view text, const char* finish_reason,
                            bool role) const {
  std::string out = prefix(chat);
  if (chat) {
    out += role ? "\"delta\":{\"role\":\"assistant\",\"content\":" : "\"delta\":{";
    if (!role && !text.empty()) {
      out += "\"content\":";
    }
    if (role || !text.empty()) {
      core::append_json_string(out, text);
    }
    out += "}";
  } else {
    out += "\"text\":";
    core::append_json_string(out, text);
  }
  out += ",\"logprobs\":null,\"finish_reason\":";
  if (finish_reason != nullptr) {
    core::append_json_string(out, finish_reason);
  } else {
    out += "null";
  }
  out += "}]";
  if (state_.options.stamp) {
    out += ",\"x_sent_ns\":" +
           std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count());
  }
  out += "}\n\n";
  return out;
}

std::string exchange::thought_chunk(std::string_view text) const {
  std::string out = prefix(true);
  const std::string& field = state_.options.reasoning_field;
  out += "\"delta\":{";
  if (field != "reasoning") {
    out += "\"reasoning_content\":";
    core::append_json_string(out, text);
  }
  if (field == "both") {
    out += ",";
  }
  if (field != "reasoning_content") {
    out += "\"reasoning\":";
    core::append_json_string(out, text);
  }
  out += "},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
  return out;
}

std::string exchange::tool_chunk(std::string_view tool_delta) const {
  std::string out = prefix(true);
  out += "\"delta\":{\"tool_calls\":[";
  out += tool_delta;
  out += "]},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
  return out;
}

// The name of the first tool of a chat request, when it offers tools.
std::optional<std::string> first_tool_name(const json::object& body) {
  const auto* tools = body.if_contains("tools");
  if (tools == nullptr || !tools->is_array() || tools->get_array().empty()) {
    return std::nullopt;
  }
  const auto* tool = tools->get_array()[0].if_object();
  const auto* function = tool ? tool->if_contains("function") : nullptr;
  const auto* name = function && function->is_object() ? function->get_object().if_contains("name")
                                                       : nullptr;
  if (name == nullptr || !name->is_string()) {
    return std::nullopt;
  }
  return std::string(name->get_string());
}

awaitable<void> exchange::stream(bool chat, const core::mock_plan& plan, const json::object& body,
                                 const mock_faults& faults) {
  if (!co_await open_stream(faults)) {
    co_return;
  }
  if (chat) {
    const std::string first = chunk(true, "", nullptr, true);
    if (co_await client_.write_chunk(first)) {
      state_.aborted++;
      co_return;
    }
  }
  const auto tool_name = chat ? first_tool_name(body) : std::nullopt;
  std::optional<core::mock_tool_call> call;
  std::size_t content_end = plan.end_token;
  if (tool_name) {
    call = core::plan_mock_tool_call(plan.seed, state_.options.answer_tokens);
    content_end = std::min(content_end, plan.thought_tokens + call->split);
  }
  // The reasoning parser sees only this output: without "</think>" in it (a continuation that
  // starts after the thought), everything is called reasoning.
  const bool all_thought = plan.thought_closed;
  // Content tokens, then (with tools) the tool call's argument deltas: one sequence of
  // "emissions" that the faults count through.
  // Content chunks are built when sent (their --stamp is the send time); tool deltas up front.
  std::vector<std::string> emissions(content_end > plan.first_token ? content_end - plan.first_token
                                                                     : 0);
  if (call) {
    const auto pieces = core::mock_argument_pieces(*call);
    for (std::size_t k = 0; k < pieces.size(); ++k) {
      std::string delta = "{\"index\":0,";
      if (k == 0) {
        delta += "\"id\":\"" + core::mock_call_id(plan.seed) +
                 "\",\"type\":\"function\",\"function\":{\"name\":";
        core::append_json_string(delta, *tool_name);
        delta += ",\"arguments\":";
      } else {
        delta += "\"function\":{\"arguments\":";
      }
      core::append_json_string(delta, pieces[k]);
      delta += "}}";
      emissions.push_back(tool_chunk(delta));
    }
  }
  std::size_t emitted = 0;
  std::optional<std::size_t> die_after = faults.die_after;
  if (!plan.continuation && faults.break_rate > 0 && plan.end_token > plan.first_token &&
      worker_.random.uniform01() < faults.break_rate) {
    die_after = worker_.random.below(plan.end_token - plan.first_token);
  }
  for (std::size_t e = 0; e < emissions.size(); ++e) {
    const std::size_t i = plan.first_token + e;  // token position, for content emissions
    if (die_after && emitted == *die_after) {
      state_.broken++;
      client_.abort(true);
      co_return;
    }
    if (faults.stall_after && emitted == *faults.stall_after) {
      state_.broken++;
      // Silence until the peer gives up (or five minutes): read what never comes.
      char byte;
      co_await client_.transport().read_some(asio::buffer(&byte, 1),
                                             std::chrono::steady_clock::now() +
                                                 std::chrono::minutes(5));
      client_.abort(false);
      co_return;
    }
    if (faults.malformed_after && emitted == *faults.malformed_after) {
      state_.broken++;
      co_await client_.write_chunk("data: {\"id\": \"broken\", \"choices\": [\n\n");
      client_.abort(false);
      co_return;
    }
    if (e > 0 && faults.tpot.count() > 0) {
      co_await sleep_for(faults.tpot);
    }
    if (i < content_end) {
      const auto token = core::mock_output_token(plan, i);
      emissions[e] = chat && (all_thought || core::mock_in_thought(plan, i))
                         ? thought_chunk(token)
                         : chunk(chat, token, nullptr, false);
    }
    const std::string& next = emissions[e];
    if (faults.cut_after && emitted == *faults.cut_after) {
      // Half an event, split inside the token when it is multi-byte UTF-8, then a reset.
      state_.broken++;
      const auto token = i < content_end ? core::mock_output_token(plan, i) : std::string_view("{");
      const auto at = std::min(next.find(token), next.size() / 2);
      const std::string_view half(next.data(), at + 1);
      co_await client_.write_chunk(half);
      client_.abort(true);
      co_return;
    }
    if (co_await client_.write_chunk(next)) {
      state_.aborted++;
      co_return;
    }
    ++emitted;
  }
  std::string tail = chunk(chat, "", call ? "tool_calls" : plan.stopped_by_length ? "length" : "stop",
                          false);
  const auto* options = body.if_contains("stream_options");
  if (options && options->is_object()) {
    if (const auto* u = options->get_object().if_contains("include_usage");
        u && u->is_bool() && u->get_bool()) {
      tail += "data: " + usage_chunk_json(chat, plan, id_, created_, model_) + "\n\n";
    }
  }
  tail += "data: [DONE]\n\n";
  if (!co_await client_.finish_stream(tail)) {
    state_.completed++;
  } else {
    state_.aborted++;
  }
}

bool exchange::request_faults(mock_faults& faults, std::string& error) const {
  faults = state_.current_faults();
  if (auto h = req_.find("x-mock-fault"); h != req_.end()) {
    error = parse_mock_faults(h->value(), faults);
  }
  return error.empty();
}

awaitable<bool> exchange::open_stream(const mock_faults& faults) {
  state_.streams++;
  http::response<http::empty_body> header{http::status::ok, req_.version()};
  header.set(http::field::content_type, "text/event-stream");
  header.set(http::field::cache_control, "no-cache");
  stamp_body_digest(header.base());
  if (co_await client_.begin_stream(std::move(header))) {
    co_return false;
  }
  if (faults.ttft.count() > 0) {
    co_await sleep_for(faults.ttft);
  }
  co_return true;
}

awaitable<bool> exchange::write_with_faults(const std::vector<core::mock_sse_event>& events,
                                            const mock_faults& faults) {
  std::size_t emitted = 0;
  std::optional<std::size_t> die_after = faults.die_after;
  std::size_t tokens = 0;
  for (const auto& e : events) {
    tokens += e.token ? 1 : 0;
  }
  if (faults.break_rate > 0 && tokens > 0 && worker_.random.uniform01() < faults.break_rate) {
    die_after = worker_.random.below(tokens);
  }
  for (const auto& e : events) {
    if (e.token) {
      if (die_after && emitted == *die_after) {
        state_.broken++;
        client_.abort(true);
        co_return false;
      }
      if (faults.stall_after && emitted == *faults.stall_after) {
        state_.broken++;
        char byte;
        co_await client_.transport().read_some(asio::buffer(&byte, 1),
                                               std::chrono::steady_clock::now() +
                                                   std::chrono::minutes(5));
        client_.abort(false);
        co_return false;
      }
      if (faults.malformed_after && emitted == *faults.malformed_after) {
        state_.broken++;
        co_await client_.write_chunk("data: {\"type\": \"response.output_text.delta\", \"del\n\n");
        client_.abort(false);
        co_return false;
      }
      if (emitted > 0 && faults.tpot.count() > 0) {
        co_await sleep_for(faults.tpot);
      }
      if (faults.cut_after && emitted == *faults.cut_after) {
        state_.broken++;
        const std::string_view half(e.wire.data(), e.wire.size() / 2);
        co_await client_.write_chunk(half);
        client_.abort(true);
        co_return false;
      }
    }
    if (co_await client_.write_chunk(e.wire)) {
      state_.aborted++;
      co_return false;
    }
    emitted += e.token ? 1 : 0;
  }
  co_return true;
}

// POST /v1/responses: the same answer as chat gives to the messages the input stands for.
std::string exchange::read_request(core::mock_api api, std::size_t thought_tokens,
                                   json::value& parsed, core::mock_plan& plan,
                                   mock_faults& faults) const {
  json::error_code ec;
  parsed = json::parse(req_.body(), ec);
  if (ec || !parsed.is_object()) {
    return "body must be a JSON object";
  }
  std::string error;
  if (!core::plan_mock_answer(parsed.get_object(), api, state_.options.answer_tokens,
                              thought_tokens, plan, error) ||
      !request_faults(faults, error)) {
    return error;
  }
  return {};
}

awaitable<void> exchange::generate_response() {
  json::value parsed;
  core::mock_plan plan;
  mock_faults faults;
  if (auto error = read_request(core::mock_api::responses, state_.options.thought_tokens, parsed,
                                plan, faults);
      !error.empty()) {
    std::string reply = core::openai_error_body("invalid_request_error", error);
    co_await send(http::status::bad_request, reply);
    co_return;
  }
  core::mock_response_identity identity;
  identity.id = fmt::format("resp_{:016x}{:x}", plan.seed, ++worker_.counter);
  identity.created_at = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  identity.model = state_.options.model;
  const auto& body = parsed.get_object();
  if (const auto* m = body.if_contains("model"); m && m->is_string()) {
    identity.model = std::string(m->get_string());
  }
  const auto* stream_flag = body.if_contains("stream");
  if (!(stream_flag && stream_flag->is_bool() && stream_flag->get_bool())) {
    state_.completed++;
    std::string reply = core::mock_response_json(plan, identity);
    co_await send(http::status::ok, reply);
    co_return;
  }
  if (!co_await open_stream(faults)) {
    co_return;
  }
  const auto tool = core::mock_responses_tool(body);
  const auto events = core::mock_response_events(plan, identity, tool ? &*tool : nullptr,
                                                 state_.options.answer_tokens);
  if (co_await write_with_faults(events, faults)) {
    if (!co_await client_.end_stream()) {
      state_.completed++;
    } else {
      state_.aborted++;
    }
  }
}

// POST /v1/messages (Anthropic-style), streamed: the chat answer to the same messages.
awaitable<void> exchange::generate_message() {
  json::value parsed;
  core::mock_plan plan;
  mock_faults faults;
  if (auto error = read_request(core::mock_api::chat, 0, parsed, plan, faults); !error.empty()) {
    std::string reply = core::openai_error_body("invalid_request_error", error);
    co_await send(http::status::bad_request, reply);
    co_return;
  }
  if (!co_await open_stream(faults)) {
    co_return;
  }
  const auto events = core::mock_message_events(
      plan, fmt::format("msg_{:016x}{:x}", plan.seed, ++worker_.counter), state_.options.model);
  if (co_await write_with_faults(events, faults)) {
    if (!co_await client_.end_stream()) {
      state_.completed++;
    }
  }
}

// POST /v1/ticks: a stream in no protocol nines knows (lines that are not JSON), for tests of
// routes.passthrough: eight "tick <n>" events, each a fault-counted token, then a clean end.
awaitable<void> exchange::ticks() {
  mock_faults faults;
  std::string error;
  if (!request_faults(faults, error)) {
    co_await send(http::status::bad_request, error);
    co_return;
  }
  if (!co_await open_stream(faults)) {
    co_return;
  }
  std::vector<core::mock_sse_event> events;
  for (int n = 0; n < 8; ++n) {
    events.push_back({fmt::format("data: tick {}\n\n", n), true});
  }
  if (co_await write_with_faults(events, faults)) {
    if (!co_await client_.end_stream()) {
      state_.completed++;
    }
  }
}

awaitable<void> exchange::generate(bool chat) {
  json::error_code ec;
  auto parsed = json::parse(req_.body(), ec);
  if (ec || !parsed.is_object()) {
    {
      std::string reply = core::openai_error_body("invalid_request_error", "body must be a JSON object");
      co_await send(http::status::bad_request, reply);
    }
    co_return;
  }
  auto& body = parsed.get_object();
  mock_faults faults;
  if (std::string err; !request_faults(faults, err)) {
    std::string reply = core::openai_error_body("invalid_request_error", err);
    co_await send(http::status::bad_request, reply);
    co_return;
  }
  if (faults.error_rate > 0 && worker_.random.uniform01() < faults.error_rate) {
    state_.errors_503++;
    {
      std::string reply = core::openai_error_body("server_error", "mock overload (injected 503)");
      co_await send(http::status::service_unavailable, reply);
    }
    co_return;
  }
  if (faults.rate_limit_rate > 0 && worker_.random.uniform01() < faults.rate_limit_rate) {
    state_.errors_429++;
    auto res = json_response(req_.version(), http::status::too_many_requests,
                             core::openai_error_body("rate_limit_error", "mock rate limit"));
    res.set(http::field::retry_after, std::to_string(faults.retry_after_s));
    co_await client_.send(std::move(res));
    co_return;
  }
  core::mock_plan plan;
  std::string error;
  if (!core::plan_mock_answer(body, chat ? core::mock_api::chat : core::mock_api::completions,
                              state_.options.answer_tokens, state_.options.thought_tokens, plan,
                              error)) {
    {
      std::string reply = core::openai_error_body("invalid_request_error", error);
      co_await send(http::status::bad_request, reply);
    }
    co_return;
  }
  if (plan.continuation) {
    state_.continuations++;
  }
  id_ = fmt::format("{}-{:016x}{:x}", chat ? "chatcmpl" : "cmpl", plan.seed, ++worker_.counter);
  created_ = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  model_ = state_.options.model;
  if (const auto* m = body.if_contains("model"); m && m->is_string()) {
    model_ = std::string(m->get_string());
  }
  const auto* stream_flag = body.if_contains("stream");
  if (stream_flag && stream_flag->is_bool() && stream_flag->get_bool()) {
    co_await stream(chat, plan, body, faults);
    co_return;
  }
  if (faults.ttft.count() > 0) {
    co_await sleep_for(faults.ttft);
  }
  std::string payload =
      whole_answer_json(chat, plan, id_, created_, model_, state_.options.reasoning_field);
  if (faults.die_after || faults.stall_after || faults.malformed_after || faults.cut_after) {
    // A non-streamed answer broken half-way: the declared length is never reached.
    state_.broken++;
    http::response<http::empty_body> header{http::status::ok, req_.version()};
    header.set(http::field::content_type, "application/json");
    header.content_length(payload.size());
    std::string wire;
    append_response_header(wire, header.base());
    wire.append(payload, 0, payload.size() / 2);
    const std::array<asio::const_buffer, 1> buffers{asio::buffer(wire)};
    co_await client_.transport().write(buffers, std::chrono::seconds(10));
    client_.abort(faults.die_after.has_value());
    co_return;
  }
  state_.completed++;
  {
    std::string reply = std::move(payload);
    co_await send(http::status::ok, reply);
  }
}

// POST /oauth/token: the client-credentials grant (RFC 6749 §4.4) with HTTP Basic client auth.
awaitable<void> exchange::issue_token() {
  state_.token_requests++;
  namespace b64 = boost::beast::detail::base64;
  const std::string& client = state_.options.oauth_client;
  std::string expected(b64::encoded_size(client.size()), '\0');
  expected.resize(b64::encode(expected.data(), client.data(), client.size()));
  if (req_[http::field::authorization] != "Basic " + expected) {
    std::string reply = R"({"error":"invalid_client"})";
    co_await send(http::status::unauthorized, reply);
    co_return;
  }
  if (req_.body().find("grant_type=client_credentials") == std::string::npos) {
    std::string reply = R"({"error":"unsupported_grant_type"})";
    co_await send(http::status::bad_request, reply);
    co_return;
  }
  std::string token;
  {
    std::lock_guard lock(state_.mutex);
    token = fmt::format("tok-{}", ++state_.tokens_issued);
    state_.tokens[token] =
        std::chrono::steady_clock::now() + std::chrono::seconds(state_.options.token_ttl_s);
  }
  std::string reply = fmt::format(R"({{"access_token":"{}","token_type":"Bearer","expires_in":{}}})",
                                  token, state_.options.token_ttl_s);
  co_await send(http::status::ok, reply);
}

awaitable<void> exchange::run() {
  const std::string_view target = req_.target();
  const std::string_view path = target.substr(0, target.find('?'));
  // Health probes are counted apart: "requests" is what clients sent.
  const bool probe = req_.method() == http::verb::get && (path == "/health" || path == "/healthz");
  (probe ? state_.health_checks : state_.requests)++;
  if (path.starts_with("/v1/")) {
    // What the request carried, for tests of what a proxy sends on (GET /mock/last-headers).
    json::object headers;
    for (const auto& h : req_) {
      std::string name(h.name_string());
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      headers[name] = std::string(h.value());
    }
    std::lock_guard lock(state_.mutex);
    state_.last_headers = json::serialize(headers);
  }
  if (path.starts_with("/v1/") && !state_.authorized(req_[http::field::authorization])) {
    state_.unauthorized++;
    std::string reply = core::openai_error_body("invalid_request_error", "Incorrect API key provided",
                                                "invalid_api_key");
    co_await send(http::status::unauthorized, reply);
  } else if (req_.method() == http::verb::post && path == "/oauth/token" &&
             state_.options.token_ttl_s > 0) {
    co_await issue_token();
  } else if (probe) {
    {
      std::string reply = R"({"status":"ok"})";
      co_await send(http::status::ok, reply);
    }
  } else if (req_.method() == http::verb::get && path == "/v1/models") {
    {
      std::string reply = models_json(state_.options.model);
      co_await send(http::status::ok, reply);
    }
  } else if (req_.method() == http::verb::post && path == "/v1/chat/completions") {
    co_await generate(true);
  } else if (req_.method() == http::verb::post && path == "/v1/completions") {
    co_await generate(false);
  } else if (req_.method() == http::verb::post && path == "/v1/responses") {
    co_await generate_response();
  } else if (req_.method() == http::verb::post && path == "/v1/messages") {
    co_await generate_message();
  } else if (req_.method() == http::verb::post && path == "/v1/ticks") {
    co_await ticks();
  } else if (req_.method() == http::verb::post && path == "/v1/embeddings") {
    {
      std::string reply = embedding_json(req_.body(), state_.options.model);
      co_await send(http::status::ok, reply);
    }
  } else if (req_.method() == http::verb::get && path == "/mock/stats") {
    {
      std::string reply = stats_json(state_);
      co_await send(http::status::ok, reply);
    }
  } else if (req_.method() == http::verb::get && path == "/mock/last-headers") {
    std::string reply;
    {
      std::lock_guard lock(state_.mutex);
      reply = state_.last_headers;
    }
    co_await send(http::status::ok, reply);
  } else if (req_.method() == http::verb::post && path == "/mock/revoke-tokens") {
    {
      std::lock_guard lock(state_.mutex);
      state_.tokens.clear();  // as an identity provider that rotated its signing key
    }
    std::string reply = R"({"ok":true})";
    co_await send(http::status::ok, reply);
  } else if (req_.method() == http::verb::post && path == "/mock/faults") {
    json::error_code ec;
    auto v = json::parse(req_.body(), ec);
    mock_faults next;
    std::string err = ec ? "invalid JSON: " + ec.message() : faults_from_json(v, next);
    if (!err.empty()) {
      {
        std::string reply = core::openai_error_body("invalid_request_error", err);
        co_await send(http::status::bad_request, reply);
      }
    } else {
      {
        std::lock_guard lock(state_.mutex);
        state_.faults = next;
      }
      {
        std::string reply = R"({"ok":true})";
        co_await send(http::status::ok, reply);
      }
    }
  } else {
    {
      std::string reply = core::openai_error_body("not_found", fmt::format("no route {}", path));
      co_await send(http::status::not_found, reply);
    }
  }
}

awaitable<void> serve_mock(request& req, downstream& client, mock_worker& worker) {
  exchange ex(req, client, worker);
  co_await ex.run();
}

}  // namespace

std::string parse_mock_faults(std::string_view text, mock_faults& f) {
  std::vector<core::key_value> items;
  if (auto why = core::split_key_values(text, items); !why.empty()) {
    return "fault " + why;
  }
  for (const auto& [key, value] : items) {
    const auto item = fmt::format("{}={}", key, value);
    const auto number = core::parse_double(value);
    const auto count = core::parse_count(value);
    if (key == "error_rate" && number && *number >= 0 && *number <= 1) {
      f.error_rate = *number;
    } else if (key == "rate_limit_rate" && number && *number >= 0 && *number <= 1) {
      f.rate_limit_rate = *number;
    } else if (key == "break_rate" && number && *number >= 0 && *number <= 1) {
      f.break_rate = *number;
    } else if (key == "retry_after" && count) {
      f.retry_after_s = static_cast<unsigned>(*count);
    } else if (key == "die_after" && count) {
      f.die_after = *count;
    } else if (key == "stall_after" && count) {
      f.stall_after = *count;
    } else if (key == "malformed_after" && count) {
      f.malformed_after = *count;
    } else if (key == "cut_after" && count) {
      f.cut_after = *count;
    } else if (key == "ttft_ms" && count) {
      f.ttft = milliseconds(*count);
    } else if (key == "tpot_ms" && count) {
      f.tpot = milliseconds(*count);
    } else {
      return fmt::format("bad fault '{}': keys are error_rate, rate_limit_rate, break_rate (0..1), "
                         "retry_after, die_after, stall_after, malformed_after, cut_after, ttft_ms, tpot_ms",
                         item);
    }
  }
  return {};
}

int run_mock_llm(const mock_options& options) {
  const auto addr = core::parse_listen_address(options.listen);
  if (!addr) {
    throw std::runtime_error("--listen must be host:port");
  }
  if (options.refuse) {
    // A bound socket that never listens: every connect gets ECONNREFUSED, and the port stays ours.
    asio::io_context ctx;
    tcp::socket socket(ctx);
    const tcp::endpoint ep(asio::ip::make_address(addr->host), addr->port);
    socket.open(ep.protocol());
    socket.set_option(asio::socket_base::reuse_address(true));
    socket.bind(ep);
    spdlog::info("nines mock-llm refusing connections on http://{}:{}", addr->host,
                 socket.local_endpoint().port());
    asio::signal_set signals(ctx, SIGTERM, SIGINT);
    signals.async_wait([](const error_code&, int) {});
    ctx.run();
    return 0;
  }
  auto state = std::make_shared<mock_state>();
  state->options = options;
  state->faults = options.faults;
  server_limits limits;
  limits.max_body_bytes = 64u << 20;
  server_group group(addr->host, addr->port, options.workers, limits);
  const auto port = group.bind();
  std::vector<std::unique_ptr<mock_worker>> workers;
  for (unsigned i = 0; i < group.size(); ++i) {
    workers.push_back(std::make_unique<mock_worker>(mock_worker{*state, core::splitmix_rng(options.seed + i)}));
    auto* w = workers.back().get();
    group.start(i, [w](request& req, downstream& client) { return serve_mock(req, client, *w); });
  }
  asio::io_context control;
  asio::signal_set signals(control, SIGTERM, SIGINT);
  signals.async_wait([&](const error_code& ec, int) {
    if (!ec) {
      group.stop();
    }
  });
  std::thread control_thread([&] { control.run(); });
  spdlog::info("nines mock-llm listening on http://{}:{}", addr->host, port);
  group.run();
  asio::post(control, [&] { signals.cancel(); });
  control_thread.join();
  return 0;
}

}  // namespace nines::tools
