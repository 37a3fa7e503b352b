#include "core/stream/stream_continuation.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "core/json/json_text.hpp"
#include "core/json/sax_handler.hpp"
#include <climits>
#include <vector>
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

void shrink_budget(json::object& body, std::size_t produced) {
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (auto* v = body.if_contains(key); v && v->is_number()) {
      if (const auto limit = as_integer(*v)) {
        *v = std::max<std::int64_t>(1, *limit - static_cast<std::int64_t>(produced));
      }
    }
  }
}

// The text of a string field, removed; anything else is left as it is.
std::string take_string(json::object& o, std::string_view key) {
  std::string out;
  if (auto* v = o.if_contains(key); v && v->is_string()) {
    out = std::string(v->get_string());
    o.erase(key);
  }
  return out;
}

// A continuation's delta with its thought and answer where the client expects them. The server's
// reasoning parser sees only the continuation's output: a thought that goes on is reasoning up to
// its "</think>" (split here if the parser left the tag in), and once the answer began every
// token is answer, even if a parser that never saw "</think>" in its output calls it reasoning.
void place_reasoning(json::object& d, stream_progress& progress) {
  if (!d.contains("reasoning_content") && !d.contains("reasoning")) {
    return;
  }
  std::string thought = take_string(d, "reasoning_content");
  if (std::string other = take_string(d, "reasoning"); thought.empty()) {
    thought = std::move(other);
  }
  std::string answer;
  if (auto* c = d.if_contains("content"); c && c->is_string()) {
    answer = std::string(c->get_string());
  }
  if (progress.thought_over()) {
    answer = thought + answer;
    thought.clear();
  } else if (const auto end = thought.find("</think>"); end != std::string::npos) {
    answer = thought.substr(end + 8) + answer;
    thought.resize(end);
    progress.thought_closed = true;  // even when the tag came alone: what follows is answer
  }
  if (!thought.empty()) {
    const auto fields = progress.reasoning_fields == 0 ? reasoning_content_field
                                                        : progress.reasoning_fields;
    if (fields & reasoning_content_field) {
      d["reasoning_content"] = thought;
    }
    if (fields & reasoning_field) {
      d["reasoning"] = thought;
    }
  }
  if (!answer.empty()) {
    d["content"] = answer;
  } else if (auto* c = d.if_contains("content"); c && c->is_string()) {
    d.erase("content");
  }
}

}  // namespace

namespace {

// A SAX reader for one stream event: the few fields continuation needs, without building a DOM
// or copying what it does not need. Runs for every event of every stream, so it must be cheap.
class chunk_reader : public sax_handler {
 public:

  stream_chunk chunk;
  bool non_finite = false;
  bool duplicate = false;  // a text field repeated

  bool on_object_begin(json::error_code&) { return open(true); }
  bool on_object_end(std::size_t, json::error_code&) { return close(); }
  bool on_array_begin(json::error_code&) { return open(false); }
  bool on_array_end(std::size_t, json::error_code&) { return close(); }
  bool on_key_part(json::string_view part, std::size_t, json::error_code&) {
    append_key(part);
    return true;
  }
  bool on_key(json::string_view part, std::size_t, json::error_code&) {
    append_key(part);
    key_ = classify(key_text_);
    key_text_.clear();
    key_long_ = false;
    if (here() == frame::delta || here() == frame::choice) {
      // A text field given twice: this reader would join the two, a client keeps one of them.
      // Which one the client shows is not something to guess: the event is malformed.
      const auto bit = text_field_bit(key_);
      duplicate = duplicate || (choice_.text_fields & bit) != 0;
      choice_.text_fields |= bit;
    }
    if (here() == frame::top && key_ == field::error) {
      chunk.is_error = true;
    }
    if (here() == frame::delta && key_ == field::role) {
      choice_.has_role = true;
    }
    return true;
  }
  bool on_string_part(json::string_view part, std::size_t, json::error_code&) {
    if (auto* target = string_target()) {
      target->append(part.data(), part.size());
    }
    return true;
  }
  bool on_string(json::string_view part, std::size_t, json::error_code&) {
    if (auto* target = string_target()) {
      target->append(part.data(), part.size());
    }
    if (here() == frame::choice && key_ == field::finish_reason) {
      choice_.finish_reason = std::move(finish_text_);
      finish_text_.clear();
    }
    note_tool_value();
    return true;
  }
  bool on_int64(std::int64_t v, json::string_view, json::error_code&) {
    number(v);
    return true;
  }
  bool on_uint64(std::uint64_t v, json::string_view, json::error_code&) {
    number(v > static_cast<std::uint64_t>(INT64_MAX) ? -1 : static_cast<std::int64_t>(v));
    return true;
  }
  bool on_double(double v, json::string_view, json::error_code&) {
    // boost::json 1.81 reads 1e999 as infinity and would write it back as "Infinity", which is
    // not JSON: such an event counts as malformed (found by stream_chunk_fuzz).
    non_finite = non_finite || !std::isfinite(v);
    // A created or index that is not an integer is not one we can use.
    number(std::nullopt);
    return true;
  }
  bool on_bool(bool, json::error_code&) {
    note_tool_value();
    return true;
  }
  bool on_null(json::error_code&) { return true; }

 private:
  enum class frame { top, choices, choice, delta, usage, other };
  enum class field {
    other, id, created, model, error, usage, choices, index, text, delta, finish_reason,
    content, role, tool_calls, function_call, total_tokens, reasoning_content, reasoning
  };
  struct choice_fields {
    std::optional<std::int64_t> index;
    bool index_seen = false;
    std::string text;
    std::string reasoning_content;
    std::string reasoning;
    std::uint8_t reasoning_fields = 0;
    unsigned text_fields = 0;  // which text-carrying keys this choice (or its delta) had
    bool has_role = false;
    bool tool_calls = false;
    std::optional<std::string> finish_reason;
  };

  frame here() const { return stack_.empty() ? frame::other : stack_.back(); }

  static unsigned text_field_bit(field f) {
    switch (f) {
      case field::content: return 1;
      case field::text: return 2;
      case field::reasoning_content: return 4;
      case field::reasoning: return 8;
      case field::finish_reason: return 16;
      default: return 0;
    }
  }

  static field classify(std::string_view k) {
    static constexpr std::pair<std::string_view, field> names[] = {
        {"id", field::id}, {"created", field::created}, {"model", field::model},
        {"error", field::error}, {"usage", field::usage}, {"choices", field::choices},
        {"index", field::index}, {"text", field::text}, {"delta", field::delta},
        {"finish_reason", field::finish_reason}, {"content", field::content},
        {"role", field::role}, {"tool_calls", field::tool_calls},
        {"function_call", field::function_call}, {"total_tokens", field::total_tokens},
        {"reasoning_content", field::reasoning_content}, {"reasoning", field::reasoning}};
    for (const auto& [name, f] : names) {
      if (k == name) {
        return f;
      }
    }
    return field::other;
  }

  void append_key(json::string_view part) {
    if (key_text_.size() + part.size() > 24) {
      key_long_ = true;
    }
    if (!key_long_) {
      key_text_.append(part.data(), part.size());
    } else {
      key_text_.clear();
    }
  }

  bool open(bool object) {
    const frame parent = here();
    frame next = frame::other;
    if (stack_.empty()) {
      top_is_object_ = object;
      next = frame::top;
    } else if (parent == frame::top && key_ == field::choices && !object) {
      next = frame::choices;
    } else if (parent == frame::choices && object) {
      next = frame::choice;
      choice_ = choice_fields{};
    } else if (parent == frame::choice && key_ == field::delta && object) {
      next = frame::delta;
    } else if (parent == frame::top && key_ == field::usage && object) {
      chunk.has_usage = true;
      next = frame::usage;
    }
    note_tool_value();
    stack_.push_back(next);
    key_ = field::other;
    return stack_.size() <= 64;
  }

  bool close() {
    const frame done = here();
    stack_.pop_back();
    if (done == frame::choice) {
      if (!choice_.index_seen || choice_.index == 0) {
        chunk.has_choice = true;
        chunk.text = std::move(choice_.text);
        take_reasoning();
        chunk.has_role = choice_.has_role;
        chunk.tool_calls = chunk.tool_calls || choice_.tool_calls;
        chunk.finish_reason = std::move(choice_.finish_reason);
      } else {
        chunk.other_choice = true;
      }
    }
    key_ = field::other;
    return true;
  }

  // Where a string value goes, if anywhere.
  std::string* string_target() {
    const frame f = here();
    if (f == frame::top && key_ == field::id) {
      return &chunk.id;
    }
    if (f == frame::top && key_ == field::model) {
      return &chunk.model;
    }
    if ((f == frame::choice && key_ == field::text) || (f == frame::delta && key_ == field::content)) {
      return &choice_.text;
    }
    if (f == frame::choice && key_ == field::finish_reason) {
      return &finish_text_;
    }
    if (f == frame::delta && key_ == field::reasoning_content) {
      choice_.reasoning_fields |= reasoning_content_field;
      return &choice_.reasoning_content;
    }
    if (f == frame::delta && key_ == field::reasoning) {
      choice_.reasoning_fields |= reasoning_field;
      return &choice_.reasoning;
    }
    return nullptr;
  }

  // A server may send the thought in both fields (the old name kept for compatibility): the same
  // text twice is one thought; two different texts are not something to guess about.
  void take_reasoning() {
    auto& a = choice_.reasoning_content;
    auto& b = choice_.reasoning;
    chunk.reasoning_fields = choice_.reasoning_fields;
    if (!a.empty() && !b.empty() && a != b) {
      chunk.ambiguous_reasoning = true;
    }
    chunk.reasoning = !a.empty() ? std::move(a) : std::move(b);
  }

  // Any value but null under delta.tool_calls or delta.function_call is a tool call.
  void note_tool_value() {
    if (here() == frame::delta && (key_ == field::tool_calls || key_ == field::function_call)) {
      choice_.tool_calls = true;
    }
  }

  void number(std::optional<std::int64_t> v) {
    const frame f = here();
    if (f == frame::top && key_ == field::created) {
      chunk.created = v.value_or(0);
    } else if (f == frame::choice && key_ == field::index) {
      choice_.index_seen = true;
      choice_.index = v;
    } else if (f == frame::usage && key_ == field::total_tokens && v && *v >= 0) {
      chunk.total_tokens = static_cast<std::uint64_t>(*v);
    }
    note_tool_value();
  }

 public:
  bool top_is_object_ = false;

 private:
  std::vector<frame> stack_;
  field key_ = field::other;
  std::string key_text_;
  bool key_long_ = false;
  choice_fields choice_;
  std::string finish_text_;
};

}  // namespace

std::string_view to_string(stream_break cause) {
  switch (cause) {
    case stream_break::reset: return "reset";
    case stream_break::closed: return "closed";
    case stream_break::stall: return "stall";
    case stream_break::malformed: return "malformed";
    case stream_break::error_event: return "error_event";
    case stream_break::too_large: return "too_large";
  }
  return "unknown";
}

stream_chunk read_stream_chunk(std::string_view data) {
  json::parse_options options;
  options.max_depth = 64;
  json::basic_parser<chunk_reader> parser(options);
  json::error_code ec;
  const std::size_t used = parser.write_some(false, data.data(), data.size(), ec);
  auto& reader = parser.handler();
  if (ec || used != data.size() || !reader.top_is_object_ || reader.non_finite ||
      reader.duplicate) {
    return stream_chunk{};
  }
  reader.chunk.valid = true;
  return std::move(reader.chunk);
}

void stream_progress::record(const stream_chunk& chunk) {
  if (!identity_known && !chunk.id.empty()) {
    identity_known = true;
    id = chunk.id;
    created = chunk.created;
    model = chunk.model;
  }
  if ((chunk.tool_calls || chunk.other_choice) && !unsupported) {
    unsupported = true;
    unsupported_why = "tool calls or several choices";
  }
  if (chunk.ambiguous_reasoning && !unsupported) {
    unsupported = true;
    unsupported_why = "the thought came in two fields with different texts";
  }
  if (!chunk.reasoning.empty()) {
    if (thought_over() && !unsupported) {
      // A thought after the answer began has no place in "<think>...</think>answer".
      unsupported = true;
      unsupported_why = "reasoning after the answer began";
    }
    reasoning += chunk.reasoning;
    ++reasoning_chunks;
  }
  reasoning_fields |= chunk.reasoning_fields;
  if (!chunk.text.empty()) {
    text += chunk.text;
    ++text_chunks;
  }
  if (chunk.finish_reason) {
    finished = true;
  }
}

std::string produced_text(const stream_progress& progress, reasoning_resume form) {
  if (progress.reasoning.empty()) {
    return progress.text;
  }
  std::string out = form == reasoning_resume::opened_think         ? std::string()
                    : form == reasoning_resume::think_tags_newline ? std::string("<think>\n")
                                                                   : std::string("<think>");
  out += progress.reasoning;
  if (progress.thought_over()) {
    out += "</think>";
    out += progress.text;
  }
  return out;
}

std::optional<std::string> build_continuation(std::string_view original_body, bool chat,
                                              const stream_progress& progress, resume_mode mode,
                                              reasoning_resume reasoning, std::string& why) {
  if (mode == resume_mode::none) {
    why = "resume is off for this upstream";
    return std::nullopt;
  }
  if (progress.unsupported) {
    why = "the stream cannot be continued: " + progress.unsupported_why;
    return std::nullopt;
  }
  if (!progress.reasoning.empty() && (reasoning == reasoning_resume::none || !chat)) {
    why = "the thought reached the client and this upstream's reasoning_resume is \"none\"";
    return std::nullopt;
  }
  const std::string produced = produced_text(progress, reasoning);
  json::error_code ec;
  auto v = json::parse(original_body, ec);
  if (ec || !v.is_object() || has_non_finite_number(v)) {
    why = "the original request is not a JSON object of finite numbers";
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
      content.get_string().append(produced);
    } else {
      list.push_back(json::object{{"role", "assistant"}, {"content", produced}});
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
  shrink_budget(body, progress.tokens_produced());
  return json::serialize(body);
}

std::optional<std::string> rewrite_continuation_chunk(std::string_view data,
                                                      stream_progress& progress) {
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
        place_reasoning(d, progress);
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
