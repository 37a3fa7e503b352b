#include "core/stream/responses_stream.hpp"

#include "core/json/json_text.hpp"

#include <algorithm>
#include <boost/json.hpp>

namespace nines::core {
namespace {

namespace json = boost::json;

std::string_view text_of(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key); v && v->is_string()) {
    return v->get_string();
  }
  return {};
}

const json::object* object_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v != nullptr ? v->if_object() : nullptr;
}

std::optional<std::int64_t> integer_of(const json::object& o, std::string_view key) {
  if (const auto* v = o.if_contains(key)) {
    json::error_code ec;
    const auto n = v->to_number<std::int64_t>(ec);
    if (!ec) {
      return n;
    }
  }
  return std::nullopt;
}

constexpr std::int64_t max_sequence = std::int64_t{1} << 53;
constexpr std::int64_t max_count = std::int64_t{1} << 40;
constexpr std::size_t max_call_bytes = 1u << 20;

// The event types this tracker follows; any other could carry what a final response written by
// nines would leave out (annotations, audio, other tools), so a stream holding one is not
// continued.
bool known_event(std::string_view type) {
  static constexpr std::string_view known[] = {
      "response.created", "response.in_progress", "response.queued",
      "response.output_item.added", "response.output_item.done",
      "response.content_part.added", "response.content_part.done",
      "response.output_text.delta", "response.output_text.done",
      "response.reasoning_text.delta", "response.reasoning_text.done",
      "response.function_call_arguments.delta", "response.function_call_arguments.done",
      "response.completed", "response.failed", "response.incomplete"};
  return std::find(std::begin(known), std::end(known), type) != std::end(known);
}

// A string field that must be there: false when it is missing or not a string.
bool required_text(const json::object& o, std::string_view key, std::string_view& out) {
  const auto* v = o.if_contains(key);
  if (v == nullptr || !v->is_string()) {
    return false;
  }
  out = v->get_string();
  return true;
}

// One content part of a message input item, as a chat content part.
std::optional<json::object> chat_part(const json::object& part, std::string& why) {
  const auto type = text_of(part, "type");
  if (type == "input_text" || type == "output_text" || type == "text") {
    std::string_view text;
    if (!required_text(part, "text", text)) {
      why = "a text part without a string text";
      return std::nullopt;
    }
    return json::object{{"type", "text"}, {"text", text}};
  }
  if (type == "input_image") {
    const auto* url = part.if_contains("image_url");
    if (url == nullptr || !url->is_string()) {
      why = "an input_image without an image_url (a file_id has no chat form)";
      return std::nullopt;
    }
    json::object image{{"url", url->get_string()}};
    if (const auto* detail = part.if_contains("detail"); detail && detail->is_string()) {
      image["detail"] = detail->get_string();
    }
    return json::object{{"type", "image_url"}, {"image_url", std::move(image)}};
  }
  why = "a content part of type \"" + std::string(type) + "\"";
  return std::nullopt;
}

bool add_input_item(const json::object& item, json::array& messages, std::string& why) {
  const auto type = text_of(item, "type");
  if (type == "function_call") {
    std::string_view call_id, name, arguments;
    if (!required_text(item, "call_id", call_id) || !required_text(item, "name", name) ||
        !required_text(item, "arguments", arguments)) {
      why = "a function_call without a string call_id, name and arguments";
      return false;
    }
    json::object call{{"id", call_id},
                      {"type", "function"},
                      {"function", json::object{{"name", name}, {"arguments", arguments}}}};
    messages.push_back(json::object{{"role", "assistant"}, {"tool_calls", json::array{call}}});
    return true;
  }
  if (type == "function_call_output") {
    const auto* output = item.if_contains("output");
    if (output == nullptr || !output->is_string()) {
      why = "a function_call_output whose output is not a string";
      return false;
    }
    std::string_view call_id;
    if (!required_text(item, "call_id", call_id)) {
      why = "a function_call_output without a string call_id";
      return false;
    }
    messages.push_back(json::object{{"role", "tool"},
                                    {"tool_call_id", call_id},
                                    {"content", output->get_string()}});
    return true;
  }
  if (!type.empty() && type != "message") {
    why = "an input item of type \"" + std::string(type) + "\"";
    return false;
  }
  const auto role = text_of(item, "role");
  if (role != "user" && role != "system" && role != "developer" && role != "assistant") {
    why = "an input message with role \"" + std::string(role) + "\"";
    return false;
  }
  const auto* content = item.if_contains("content");
  json::object message{{"role", role}};
  if (content != nullptr && content->is_string()) {
    message["content"] = content->get_string();
  } else if (content != nullptr && content->is_array()) {
    json::array parts;
    for (const auto& p : content->get_array()) {
      const auto* po = p.if_object();
      if (po == nullptr) {
        why = "a content part that is not an object";
        return false;
      }
      auto part = chat_part(*po, why);
      if (!part) {
        return false;
      }
      parts.push_back(std::move(*part));
    }
    message["content"] = std::move(parts);
  } else {
    why = "an input message without content";
    return false;
  }
  messages.push_back(std::move(message));
  return true;
}

bool add_tools(const json::value& tools, json::object& chat, std::string& why) {
  if (!tools.is_array()) {
    why = "tools that are not an array";
    return false;
  }
  json::array out;
  for (const auto& t : tools.get_array()) {
    const auto* to = t.if_object();
    std::string_view name;
    if (to == nullptr || text_of(*to, "type") != "function" || !required_text(*to, "name", name)) {
      why = "a tool that is not a named function (built-in tools have no chat form)";
      return false;
    }
    json::object function{{"name", name}};
    for (const auto& [key, value] : *to) {
      if (key == "description" || key == "parameters" || key == "strict") {
        function[key] = value;
      } else if (key != "type" && key != "name") {
        why = "a function tool with \"" + std::string(key) + "\"";
        return false;
      }
    }
    if (!function.contains("strict")) {
      function["strict"] = true;  // the Responses API's default; chat's is false
    }
    out.push_back(json::object{{"type", "function"}, {"function", std::move(function)}});
  }
  chat["tools"] = std::move(out);
  return true;
}

bool add_text_format(const json::value& text, json::object& chat, std::string& why) {
  const auto* to = text.if_object();
  if (to == nullptr) {
    why = "text that is not an object";
    return false;
  }
  for (const auto& [key, value] : *to) {
    if (key != "format") {
      why = "text." + std::string(key);
      return false;
    }
  }
  const auto* format = object_of(*to, "format");
  if (format == nullptr) {
    return true;
  }
  const auto type = text_of(*format, "type");
  if (type == "text") {
    return true;
  }
  if (type == "json_object") {
    chat["response_format"] = json::object{{"type", "json_object"}};
    return true;
  }
  if (type == "json_schema") {
    json::object schema;
    for (const char* key : {"name", "schema", "strict", "description"}) {
      if (const auto* v = format->if_contains(key)) {
        schema[key] = *v;
      }
    }
    chat["response_format"] = json::object{{"type", "json_schema"}, {"json_schema", std::move(schema)}};
    return true;
  }
  why = "text.format of type \"" + std::string(type) + "\"";
  return false;
}

}  // namespace

std::optional<std::string> responses_as_chat(std::string_view responses_body, std::string& why) {
  json::error_code ec;
  auto v = json::parse(responses_body, ec);
  if (ec || !v.is_object() || has_non_finite_number(v)) {
    why = "the original request is not a JSON object of finite numbers";
    return std::nullopt;
  }
  const auto& r = v.get_object();
  json::object chat;
  json::array messages;
  // Fields that only ask for bookkeeping (nothing the model sees) are left out.
  static constexpr std::string_view ignored[] = {"stream", "store", "metadata", "user",
                                                 "service_tier", "safety_identifier",
                                                 "prompt_cache_key", "stream_options"};
  for (const auto& [key, value] : r) {
    const std::string_view k = key;
    if (k == "model" || k == "temperature" || k == "top_p" || k == "seed" ||
        k == "parallel_tool_calls") {
      chat[k] = value;
    } else if (k == "max_output_tokens") {
      chat["max_tokens"] = value;
    } else if (k == "instructions" || k == "input") {
      // below, in their order
    } else if (k == "tools") {
      if (!add_tools(value, chat, why)) {
        return std::nullopt;
      }
    } else if (k == "tool_choice") {
      if (value.is_string()) {
        chat["tool_choice"] = value;
      } else if (const auto* tc = value.if_object(); tc && text_of(*tc, "type") == "function") {
        chat["tool_choice"] = json::object{{"type", "function"},
                                           {"function", json::object{{"name", text_of(*tc, "name")}}}};
      } else {
        why = "a tool_choice with no chat form";
        return std::nullopt;
      }
    } else if (k == "text") {
      if (!add_text_format(value, chat, why)) {
        return std::nullopt;
      }
    } else if (k == "reasoning") {
      const auto* ro = value.if_object();
      if (ro != nullptr) {
        if (const auto* effort = ro->if_contains("effort"); effort && effort->is_string()) {
          chat["reasoning_effort"] = *effort;
        }
      } else if (!value.is_null()) {
        why = "reasoning that is not an object";
        return std::nullopt;
      }
    } else if (k == "include") {
      // Extra data in the output: logprobs would be in the client's deltas and not in ours.
      const auto* list = value.if_array();
      for (std::size_t i = 0; list != nullptr && i < list->size(); ++i) {
        const auto* item = (*list)[i].if_string();
        if (item == nullptr || item->find("logprobs") != json::string::npos) {
          list = nullptr;
        }
      }
      if (list == nullptr && !value.is_null()) {
        why = "the request includes output (logprobs) a chat continuation would not carry";
        return std::nullopt;
      }
    } else if (k == "truncation" && value.is_string() && value.get_string() == "disabled") {
      // the default: nothing is dropped from the prompt
    } else if (k == "background" && value.is_bool() && !value.get_bool()) {
    } else if (std::find(std::begin(ignored), std::end(ignored), k) == std::end(ignored)) {
      // previous_response_id, conversation, prompt, truncation "auto", background, and whatever
      // this gateway does not know: the chat request would not be the same request.
      why = "the request uses \"" + std::string(k) + "\", which a chat continuation cannot repeat";
      return std::nullopt;
    }
  }
  if (const auto* instructions = r.if_contains("instructions"); instructions && !instructions->is_null()) {
    if (!instructions->is_string()) {
      why = "instructions that are not a string";
      return std::nullopt;
    }
    messages.push_back(json::object{{"role", "system"}, {"content", instructions->get_string()}});
  }
  const auto* input = r.if_contains("input");
  if (input != nullptr && input->is_string()) {
    messages.push_back(json::object{{"role", "user"}, {"content", input->get_string()}});
  } else if (input != nullptr && input->is_array()) {
    for (const auto& item : input->get_array()) {
      const auto* io = item.if_object();
      if (io == nullptr) {
        why = "an input item that is not an object";
        return std::nullopt;
      }
      if (!add_input_item(*io, messages, why)) {
        why = "the request holds " + why + ", which has no exact chat form";
        return std::nullopt;
      }
    }
  } else {
    why = "the request has no input";
    return std::nullopt;
  }
  chat["messages"] = std::move(messages);
  chat["stream"] = true;
  chat["stream_options"] = json::object{{"include_usage", true}};
  return json::serialize(chat);
}

void responses_progress::note_unsupported(std::string why) {
  if (unsupported_why_.empty()) {
    unsupported_why_ = std::move(why);
  }
}

bool responses_progress::hold(const json::object& event) {
  const auto type = text_of(event, "type");
  const auto* item = object_of(event, "item");
  if (call_in_progress_.empty()) {
    if (type == "response.output_item.added" && item != nullptr &&
        text_of(*item, "type") == "function_call") {
      call_in_progress_ = std::string(text_of(*item, "id"));
      if (call_in_progress_.empty()) {
        call_in_progress_ = "?";
      }
      return true;
    }
    return false;
  }
  if (type == "response.output_item.done" && item != nullptr &&
      (text_of(*item, "id") == call_in_progress_ || call_in_progress_ == "?")) {
    call_in_progress_.clear();
    return false;  // the call is complete: what was held goes out, then this
  }
  return true;
}

void responses_progress::record(const json::object& event, stream_progress* chat) {
  const auto type = text_of(event, "type");
  const auto n = integer_of(event, "sequence_number");
  if (!n || *n < 0 || *n >= max_sequence || (last_sequence_ && *n != *last_sequence_ + 1) ||
      (!last_sequence_ && *n != 0)) {
    // Numbers nines could not go on from without a gap or a repeat.
    note_unsupported("sequence numbers that do not count up from 0 by one");
  }
  if (n) {
    last_sequence_ = n;
  }
  if (!known_event(type)) {
    note_unsupported("a " + std::string(type) + " event");
  }
  if (unsupported()) {
    return;  // nothing more to follow: the stream will not be continued
  }
  const auto index = integer_of(event, "output_index");
  responses_item* item = index && *index >= 0 && static_cast<std::size_t>(*index) < items_.size()
                             ? &items_[static_cast<std::size_t>(*index)]
                             : nullptr;
  if (type == "response.created") {
    if (const auto* r = object_of(event, "response")) {
      response_ = *r;
    }
  } else if (type == "response.output_item.added") {
    const auto* added = object_of(event, "item");
    if (added == nullptr || !index || static_cast<std::size_t>(*index) != items_.size()) {
      note_unsupported("output items out of order");
      return;
    }
    responses_item next;
    next.type = std::string(text_of(*added, "type"));
    next.id = std::string(text_of(*added, "id"));
    next.item = *added;
    for (const auto& existing : items_) {
      if (existing.type == next.type) {
        note_unsupported("several " + next.type + " items");
      }
    }
    if (next.type == "function_call") {
      if (chat != nullptr) {  // the upstream's (a continuation's calls come at its very end)
        note_unsupported("a function call reached the client");
      }
    } else if (next.type != "reasoning" && next.type != "message") {
      note_unsupported("an output item of type " + next.type);
    }
    if (next.type == "message" && chat != nullptr && !chat->reasoning.empty()) {
      chat->thought_closed = true;
    }
    items_.push_back(std::move(next));
  } else if (type == "response.content_part.added") {
    const auto* part = object_of(event, "part");
    const auto part_type = part ? text_of(*part, "type") : std::string_view{};
    if (item == nullptr || item->part_open || !item->text.empty() ||
        (part_type != "output_text" && part_type != "reasoning_text")) {
      note_unsupported("a content part nines cannot continue");
      return;
    }
    item->part_open = true;
  } else if (type == "response.content_part.done") {
    if (item != nullptr) {
      item->part_open = false;
    }
  } else if (type == "response.output_text.delta" || type == "response.reasoning_text.delta") {
    const auto delta = text_of(event, "delta");
    const bool thought = type == "response.reasoning_text.delta";
    if (item == nullptr || item->done || item->type != (thought ? "reasoning" : "message")) {
      note_unsupported("a delta for an item that is not open or not of its kind");
      return;
    }
    if (thought && chat != nullptr && chat->thought_over()) {
      note_unsupported("reasoning after the answer began");
      return;
    }
    item->text.append(delta);
    if (chat != nullptr && !delta.empty()) {
      if (type == "response.output_text.delta") {
        chat->text.append(delta);
        ++chat->text_chunks;
      } else {
        chat->reasoning.append(delta);
        ++chat->reasoning_chunks;
      }
    }
  } else if (type == "response.output_item.done") {
    if (item == nullptr) {
      note_unsupported("an item done that was never added");
      return;
    }
    item->done = true;
    if (const auto* done = object_of(event, "item")) {
      item->item = *done;
    }
    if (item->type == "reasoning" && chat != nullptr && !chat->reasoning.empty()) {
      chat->thought_closed = true;  // (an empty thought is no thought: nothing to close)
    }
  }
}

void responses_progress::emit(std::string_view type, json::object fields,
                              std::vector<sse_event>& out) {
  // record() keeps last_sequence_ below 2^53: the next one is always representable.
  json::object event{{"type", type}, {"sequence_number", last_sequence_ ? *last_sequence_ + 1 : 0}};
  for (auto& [k, v] : fields) {
    event[k] = std::move(v);
  }
  record(event, nullptr);
  sse_event e;
  e.type = std::string(type);
  e.data = json::serialize(event);
  out.push_back(std::move(e));
}

responses_item* responses_progress::open_item() {
  if (items_.empty() || items_.back().done) {
    return nullptr;
  }
  return &items_.back();
}

namespace {

// A new item's id, unique in its response: "<prefix>_<response id without resp_>_<index>".
std::string new_item_id(std::string_view prefix, const json::object& response, std::size_t index) {
  std::string_view id = text_of(response, "id");
  if (id.starts_with("resp_")) {
    id.remove_prefix(5);
  }
  return std::string(prefix) + "_" + std::string(id) + "_" + std::to_string(index);
}

}  // namespace

void responses_progress::open_reasoning(std::vector<sse_event>& out) {
  const auto index = static_cast<std::int64_t>(items_.size());
  const auto id = new_item_id("rs", response_, items_.size());
  emit("response.output_item.added",
       json::object{{"output_index", index},
                    {"item", json::object{{"id", id}, {"type", "reasoning"},
                                          {"summary", json::array{}}, {"content", json::array{}},
                                          {"status", "in_progress"}}}},
       out);
  emit("response.content_part.added",
       json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                    {"part", json::object{{"type", "reasoning_text"}, {"text", ""}}}},
       out);
}

void responses_progress::open_message(std::vector<sse_event>& out) {
  const auto index = static_cast<std::int64_t>(items_.size());
  const auto id = new_item_id("msg", response_, items_.size());
  emit("response.output_item.added",
       json::object{{"output_index", index},
                    {"item", json::object{{"id", id}, {"type", "message"}, {"role", "assistant"},
                                          {"status", "in_progress"}, {"content", json::array{}}}}},
       out);
  emit("response.content_part.added",
       json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                    {"part", json::object{{"type", "output_text"}, {"text", ""},
                                          {"annotations", json::array{}}}}},
       out);
}

void responses_progress::close_open_item(std::vector<sse_event>& out) {
  responses_item* item = open_item();
  if (item == nullptr) {
    return;
  }
  const auto index = static_cast<std::int64_t>(items_.size() - 1);
  const std::string id = item->id;
  const std::string text = item->text;
  json::object done = item->item;
  done["status"] = "completed";
  if (item->type == "reasoning") {
    if (item->part_open) {
      emit("response.reasoning_text.done",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"text", text}},
           out);
      emit("response.content_part.done",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"part", json::object{{"type", "reasoning_text"}, {"text", text}}}},
           out);
    }
    done["content"] = json::array{json::object{{"type", "reasoning_text"}, {"text", text}}};
  } else {
    const json::object part{{"type", "output_text"}, {"text", text}, {"annotations", json::array{}}};
    if (items_.back().part_open) {
      emit("response.output_text.done",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"text", text}, {"logprobs", json::array{}}},
           out);
      emit("response.content_part.done",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"part", part}},
           out);
    }
    done["content"] = json::array{part};
  }
  emit("response.output_item.done", json::object{{"output_index", index}, {"item", std::move(done)}},
       out);
}

void responses_progress::continue_with(std::string_view rewritten_chunk, const stream_chunk& chunk,
                                       std::vector<sse_event>& out) {
  if (unsupported()) {
    return;
  }
  if (chunk.tool_calls || chunk.has_usage) {
    json::error_code ec;
    auto v = json::parse(rewritten_chunk, ec);
    const auto* o = ec ? nullptr : v.if_object();
    if (o != nullptr && chunk.has_usage) {
      if (const auto* u = object_of(*o, "usage")) {
        usage_ = *u;
      }
    }
    const auto* choices = o ? o->if_contains("choices") : nullptr;
    const auto* c0 = choices && choices->is_array() && !choices->get_array().empty()
                         ? choices->get_array()[0].if_object()
                         : nullptr;
    const auto* delta = c0 ? object_of(*c0, "delta") : nullptr;
    const auto* calls = delta ? delta->if_contains("tool_calls") : nullptr;
    if (chunk.tool_calls && (calls == nullptr || !calls->is_array())) {
      note_unsupported("a tool call in a form nines does not read (function_call)");
    }
    if (calls != nullptr && calls->is_array()) {
      for (const auto& call : calls->get_array()) {
        const auto* co = call.if_object();
        const auto at = co ? integer_of(*co, "index") : std::nullopt;
        if (co == nullptr || !at || *at < 0 || static_cast<std::size_t>(*at) > calls_.size() ||
            *at >= 64) {
          note_unsupported("tool-call parts with indexes out of order");
          return;
        }
        if (calls_.size() == static_cast<std::size_t>(*at)) {
          calls_.emplace_back();
        }
        auto& pending = calls_[static_cast<std::size_t>(*at)];
        const auto id = text_of(*co, "id");
        pending.call_id.append(id);
        call_bytes_ += id.size();
        if (const auto* f = object_of(*co, "function")) {
          const auto name = text_of(*f, "name");
          const auto arguments = text_of(*f, "arguments");
          pending.name.append(name);
          pending.arguments.append(arguments);
          call_bytes_ += name.size() + arguments.size();
        }
        if (call_bytes_ > max_call_bytes) {
          note_unsupported("tool calls larger than 1 MiB");
          return;
        }
      }
    }
  }
  if (!chunk.text.empty() || !chunk.reasoning.empty()) {
    // Text after the message the client saw complete: the model did not end where it had.
    for (const auto& item : items_) {
      if (item.type == "message" && (item.done || (!item.part_open && !item.text.empty()))) {
        note_unsupported("the continuation went on after the message was complete");
        return;
      }
    }
  }
  if (!chunk.reasoning.empty()) {
    responses_item* item = open_item();
    if (item == nullptr || item->type != "reasoning") {
      close_open_item(out);
      open_reasoning(out);
      item = open_item();
      if (item == nullptr) {
        return;  // the item could not be opened (the response is not one nines can follow)
      }
    }
    emit("response.reasoning_text.delta",
         json::object{{"item_id", item->id},
                      {"output_index", static_cast<std::int64_t>(items_.size() - 1)},
                      {"content_index", 0},
                      {"delta", chunk.reasoning}},
         out);
  }
  if (!chunk.text.empty()) {
    responses_item* item = open_item();
    if (item == nullptr || item->type != "message") {
      close_open_item(out);
      open_message(out);
      item = open_item();
      if (item == nullptr) {
        return;  // the item could not be opened (the response is not one nines can follow)
      }
    }
    emit("response.output_text.delta",
         json::object{{"item_id", item->id},
                      {"output_index", static_cast<std::int64_t>(items_.size() - 1)},
                      {"content_index", 0},
                      {"delta", chunk.text},
                      {"logprobs", json::array{}}},
         out);
  }
  if (chunk.finish_reason) {
    finish_reason_ = chunk.finish_reason;
  }
}

void responses_progress::complete(const stream_progress& chat, std::vector<sse_event>& out) {
  for (const auto& call : calls_) {
    if (call.call_id.empty() || call.name.empty()) {
      note_unsupported("a tool call without an id or a name");
    }
  }
  if (unsupported()) {
    return;  // nothing is written: the caller ends the stream explicitly instead
  }
  close_open_item(out);
  for (std::size_t k = 0; k < calls_.size(); ++k) {
    const auto& call = calls_[k];
    const auto index = static_cast<std::int64_t>(items_.size());
    const auto id = new_item_id("fc", response_, items_.size());
    json::object item{{"id", id},         {"type", "function_call"}, {"call_id", call.call_id},
                      {"name", call.name}, {"arguments", ""},          {"status", "in_progress"}};
    emit("response.output_item.added", json::object{{"output_index", index}, {"item", item}}, out);
    emit("response.function_call_arguments.delta",
         json::object{{"item_id", id}, {"output_index", index}, {"delta", call.arguments}}, out);
    emit("response.function_call_arguments.done",
         json::object{{"item_id", id}, {"output_index", index}, {"arguments", call.arguments}},
         out);
    item["arguments"] = call.arguments;
    item["status"] = "completed";
    emit("response.output_item.done", json::object{{"output_index", index}, {"item", item}}, out);
  }
  json::object response = response_;
  const bool filtered = finish_reason_ == "content_filter";
  const bool cut = finish_reason_ == "length" || filtered;
  response["status"] = cut ? "incomplete" : "completed";
  if (cut) {
    response["incomplete_details"] =
        json::object{{"reason", filtered ? "content_filter" : "max_output_tokens"}};
  } else {
    response["incomplete_details"] = nullptr;
  }
  json::array output;
  for (const auto& item : items_) {
    output.push_back(item.item);
  }
  response["output"] = std::move(output);
  const auto input = integer_of(usage_, "prompt_tokens");
  const auto produced = integer_of(usage_, "completion_tokens");
  if (input && produced && *input >= 0 && *produced >= 0 && *input < max_count &&
      *produced < max_count) {
    response["usage"] = json::object{
        {"input_tokens", *input},
        {"input_tokens_details", json::object{{"cached_tokens", 0}}},
        {"output_tokens", *produced},
        {"output_tokens_details", json::object{{"reasoning_tokens", chat.reasoning_chunks}}},
        {"total_tokens", *input + *produced}};
  } else {
    response["usage"] = nullptr;
  }
  emit(cut ? "response.incomplete" : "response.completed",
       json::object{{"response", std::move(response)}}, out);
}

}  // namespace nines::core
