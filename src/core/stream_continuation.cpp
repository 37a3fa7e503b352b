#include "core/stream_continuation.hpp"

#include <boost/json.hpp>
#include <cmath>
#include <optional>

namespace nines::core {
namespace {

namespace json = boost::json;

// A JSON number as an integer, without exceptions: values that are not integers (1.5, 1e300)
// give nullopt. Network input must not throw on the data path.
std::optional<std::int64_t> as_integer(const json::value& v) {
  json::error_code ec;
  const auto n = v.to_number<std::int64_t>(ec);
  if (ec) {
    return std::nullopt;
  }
  return n;
}

// boost::json 1.81 parses 1e999 as infinity and would serialise it as "Infinity", which is not
// JSON: an event carrying such a number is treated as malformed (found by stream_chunk_fuzz).
bool has_non_finite(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_: return !std::isfinite(v.get_double());
    case json::kind::array:
      for (const auto& e : v.get_array()) {
        if (has_non_finite(e)) {
          return true;
        }
      }
      return false;
    case json::kind::object:
      for (const auto& kv : v.get_object()) {
        if (has_non_finite(kv.value())) {
          return true;
        }
      }
      return false;
    default: return false;
  }
}

const json::object* first_choice(const json::object& o, bool& other) {
  const auto* choices = o.if_contains("choices");
  if (choices == nullptr || !choices->is_array()) {
    return nullptr;
  }
  const json::object* found = nullptr;
  for (const auto& c : choices->get_array()) {
    const auto* co = c.if_object();
    if (co == nullptr) {
      continue;
    }
    const auto* index = co->if_contains("index");
    const bool zero = index == nullptr || (index->is_int64() && index->get_int64() == 0) ||
                      (index->is_uint64() && index->get_uint64() == 0);
    if (zero) {
      found = co;
    } else {
      other = true;
    }
  }
  return found;
}

void shrink_budget(json::object& body, std::size_t produced) {
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (auto* v = body.if_contains(key); v && v->is_number()) {
      if (const auto limit = as_integer(*v)) {
        *v = std::max<std::int64_t>(1, *limit - static_cast<std::int64_t>(produced));
      }
    }
  }
}

}  // namespace

stream_chunk read_stream_chunk(std::string_view data) {
  stream_chunk chunk;
  unsigned char arena[4096];
  json::monotonic_resource resource(arena, sizeof arena);
  json::error_code ec;
  auto v = json::parse(data, ec, &resource);
  if (ec || !v.is_object() || has_non_finite(v)) {
    return chunk;
  }
  chunk.valid = true;
  const auto& o = v.get_object();
  chunk.is_error = o.contains("error");
  if (const auto* id = o.if_contains("id"); id && id->is_string()) {
    chunk.id = std::string(id->get_string());
  }
  if (const auto* created = o.if_contains("created")) {
    chunk.created = as_integer(*created).value_or(0);
  }
  if (const auto* model = o.if_contains("model"); model && model->is_string()) {
    chunk.model = std::string(model->get_string());
  }
  if (const auto* usage = o.if_contains("usage"); usage && usage->is_object()) {
    chunk.has_usage = true;
  }
  const auto* choice = first_choice(o, chunk.other_choice);
  if (choice == nullptr) {
    return chunk;
  }
  chunk.has_choice = true;
  if (const auto* text = choice->if_contains("text"); text && text->is_string()) {
    chunk.text = std::string(text->get_string());
  }
  if (const auto* delta = choice->if_contains("delta"); delta && delta->is_object()) {
    const auto& d = delta->get_object();
    if (const auto* content = d.if_contains("content"); content && content->is_string()) {
      chunk.text = std::string(content->get_string());
    }
    chunk.has_role = d.contains("role");
    if (const auto* tools = d.if_contains("tool_calls"); tools && !tools->is_null()) {
      chunk.tool_calls = true;
    }
    if (const auto* call = d.if_contains("function_call"); call && !call->is_null()) {
      chunk.tool_calls = true;
    }
  }
  if (const auto* finish = choice->if_contains("finish_reason"); finish && finish->is_string()) {
    chunk.finish_reason = std::string(finish->get_string());
  }
  return chunk;
}

void stream_progress::record(const stream_chunk& chunk) {
  if (!identity_known && !chunk.id.empty()) {
    identity_known = true;
    id = chunk.id;
    created = chunk.created;
    model = chunk.model;
  }
  if (chunk.tool_calls || chunk.other_choice) {
    unsupported = true;
  }
  if (!chunk.text.empty()) {
    text += chunk.text;
    ++text_chunks;
  }
  if (chunk.finish_reason) {
    finished = true;
  }
}

std::optional<std::string> build_continuation(std::string_view original_body, bool chat,
                                              const stream_progress& progress, resume_mode mode,
                                              std::string& why) {
  if (mode == resume_mode::none) {
    why = "resume is off for this upstream";
    return std::nullopt;
  }
  if (progress.unsupported) {
    why = "the stream carried tool calls or several choices";
    return std::nullopt;
  }
  json::error_code ec;
  auto v = json::parse(original_body, ec);
  if (ec || !v.is_object()) {
    why = "the original request is not a JSON object";
    return std::nullopt;
  }
  auto& body = v.get_object();
  if (chat) {
    auto* messages = body.if_contains("messages");
    if (messages == nullptr || !messages->is_array()) {
      why = "the original request has no messages";
      return std::nullopt;
    }
    auto& list = messages->get_array();
    // A request that itself continued an assistant message continues it further.
    const auto* last = list.empty() ? nullptr : list.back().if_object();
    const bool extends = last != nullptr && last->contains("role") &&
                         last->at("role").is_string() && last->at("role").get_string() == "assistant" &&
                         body.contains("continue_final_message") &&
                         body.at("continue_final_message").is_bool() &&
                         body.at("continue_final_message").get_bool();
    if (extends && last->contains("content") && last->at("content").is_string()) {
      auto& content = list.back().get_object()["content"];
      content.get_string().append(progress.text);
    } else {
      list.push_back(json::object{{"role", "assistant"}, {"content", progress.text}});
    }
    if (mode == resume_mode::continue_message) {
      body["continue_final_message"] = true;
      body["add_generation_prompt"] = false;
    }
  } else {
    auto* prompt = body.if_contains("prompt");
    if (prompt != nullptr && prompt->is_array() && prompt->get_array().size() == 1 &&
        prompt->get_array()[0].is_string()) {
      prompt = &prompt->get_array()[0];
    }
    if (prompt == nullptr || !prompt->is_string()) {
      why = "the original request has no single string prompt";
      return std::nullopt;
    }
    prompt->get_string().append(progress.text);
    // "echo" would repeat the prompt, which now includes text the client already has.
    body.erase("echo");
  }
  shrink_budget(body, progress.text_chunks);
  return json::serialize(body);
}

std::optional<std::string> rewrite_continuation_chunk(std::string_view data,
                                                      const stream_progress& progress) {
  json::error_code ec;
  auto v = json::parse(data, ec);
  if (ec || !v.is_object()) {
    return std::string(data);
  }
  auto& o = v.get_object();
  if (progress.identity_known) {
    o["id"] = progress.id;
    o["created"] = progress.created;
    o["model"] = progress.model;
  }
  bool carries = false;
  if (auto* choices = o.if_contains("choices"); choices && choices->is_array()) {
    for (auto& c : choices->get_array()) {
      auto* co = c.if_object();
      if (co == nullptr) {
        continue;
      }
      if (auto* delta = co->if_contains("delta"); delta && delta->is_object()) {
        auto& d = delta->get_object();
        d.erase("role");
        if (auto* content = d.if_contains("content");
            content && content->is_string() && content->get_string().empty()) {
          d.erase("content");
        }
        carries = carries || !d.empty();
      }
      if (auto* text = co->if_contains("text"); text && text->is_string()) {
        carries = carries || !text->get_string().empty();
      }
      if (auto* finish = co->if_contains("finish_reason"); finish && !finish->is_null()) {
        carries = true;
      }
    }
  }
  if (auto* usage = o.if_contains("usage"); usage && usage->is_object()) {
    // The continuation's prompt held the tokens produced before; count them as completion.
    auto& u = usage->get_object();
    const auto carried = static_cast<std::int64_t>(progress.carried_tokens);
    std::int64_t prompt = 0;
    std::int64_t completion = 0;
    const auto* p = u.if_contains("prompt_tokens");
    const auto* c = u.if_contains("completion_tokens");
    const auto prompt_in = p ? as_integer(*p) : std::nullopt;
    const auto completion_in = c ? as_integer(*c) : std::nullopt;
    // Counts that are not sane integers are passed on untouched.
    if (prompt_in && completion_in && *prompt_in >= 0 && *completion_in >= 0 &&
        *prompt_in < (std::int64_t{1} << 40) && *completion_in < (std::int64_t{1} << 40)) {
      prompt = std::max<std::int64_t>(0, *prompt_in - carried);
      completion = *completion_in + carried;
      u["prompt_tokens"] = prompt;
      u["completion_tokens"] = completion;
      u["total_tokens"] = prompt + completion;
    }
    carries = true;
  }
  if (!carries) {
    return std::nullopt;
  }
  return json::serialize(o);
}

}  // namespace nines::core
