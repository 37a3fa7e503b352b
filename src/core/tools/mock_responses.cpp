#include "core/tools/mock_responses.hpp"

#include <boost/json.hpp>

namespace nines::core {
namespace {

namespace json = boost::json;

struct builder {
  const mock_plan& plan;
  const mock_response_identity& identity;
  std::vector<mock_sse_event> events;
  std::int64_t sequence = 0;

  void emit(std::string_view type, const json::object& fields, bool token = false) {
    json::object body{{"type", type}, {"sequence_number", sequence++}};
    for (const auto& [k, v] : fields) {
      body[k] = v;
    }
    std::string wire = "event: ";
    wire += type;
    wire += "\ndata: ";
    wire += json::serialize(body);
    wire += "\n\n";
    events.push_back({std::move(wire), token});
  }
};

std::string item_id(std::string_view prefix, const mock_plan& plan) {
  return std::string(prefix) + std::to_string(plan.seed % 100000000);
}

json::object reasoning_item(const mock_plan& plan, const std::string& text, bool done) {
  json::object item{{"id", item_id("rs_", plan)}, {"type", "reasoning"}, {"summary", json::array{}}};
  json::array content;
  if (done) {
    content.push_back(json::object{{"type", "reasoning_text"}, {"text", text}});
  }
  item["content"] = std::move(content);
  item["status"] = done ? "completed" : "in_progress";
  return item;
}

json::object output_text(const std::string& text) {
  return json::object{{"type", "output_text"}, {"text", text}, {"annotations", json::array{}}};
}

json::object message_item(const mock_plan& plan, const std::string& text, bool done) {
  json::object item{{"id", item_id("msg_", plan)}, {"type", "message"}, {"role", "assistant"}};
  item["status"] = done ? "completed" : "in_progress";
  json::array content;
  if (done) {
    content.push_back(output_text(text));
  }
  item["content"] = std::move(content);
  return item;
}

json::object response_object(const mock_plan& plan, const mock_response_identity& identity,
                             std::string_view status, json::array output) {
  json::object r{{"id", identity.id},       {"object", "response"},
                 {"created_at", identity.created_at}, {"model", identity.model},
                 {"status", status},        {"output", std::move(output)}};
  if (status == "incomplete") {
    r["incomplete_details"] = json::object{{"reason", "max_output_tokens"}};
  } else {
    r["incomplete_details"] = nullptr;
  }
  if (status == "in_progress") {
    r["usage"] = nullptr;
  } else {
    std::size_t thought = 0;
    for (std::size_t i = plan.first_token; i < plan.end_token; ++i) {
      thought += mock_in_thought(plan, i) ? 1 : 0;
    }
    const std::size_t produced = plan.end_token - plan.first_token;
    r["usage"] = json::object{
        {"input_tokens", plan.prompt_tokens},
        {"input_tokens_details", json::object{{"cached_tokens", 0}}},
        {"output_tokens", produced},
        {"output_tokens_details", json::object{{"reasoning_tokens", thought}}},
        {"total_tokens", plan.prompt_tokens + produced}};
  }
  return r;
}

json::array final_output(const mock_plan& plan, const mock_output& out) {
  json::array output;
  if (!out.thought.empty()) {
    output.push_back(reasoning_item(plan, out.thought, true));
  }
  output.push_back(message_item(plan, out.answer, true));
  return output;
}

}  // namespace

std::optional<std::string> mock_responses_tool(const json::object& request) {
  const auto* tools = request.if_contains("tools");
  if (tools == nullptr || !tools->is_array()) {
    return std::nullopt;
  }
  for (const auto& t : tools->get_array()) {
    const auto* o = t.if_object();
    const auto* type = o ? o->if_contains("type") : nullptr;
    const auto* name = o ? o->if_contains("name") : nullptr;
    if (type && type->is_string() && type->get_string() == "function" && name && name->is_string()) {
      return std::string(name->get_string());
    }
  }
  return std::nullopt;
}

std::vector<mock_sse_event> mock_response_events(const mock_plan& plan,
                                                 const mock_response_identity& identity,
                                                 const std::string* tool,
                                                 std::size_t answer_tokens) {
  std::optional<mock_tool_call> call;
  mock_plan text_plan = plan;  // what the message holds: with a tool, up to the call
  if (tool != nullptr) {
    call = plan_mock_tool_call(plan.seed, answer_tokens);
    text_plan.end_token = std::min(plan.end_token, plan.thought_tokens + call->split);
  }
  builder b{text_plan, identity, {}, 0};
  const auto& plan_for_text = text_plan;
  b.emit("response.created",
         json::object{{"response", response_object(plan, identity, "in_progress", {})}});
  b.emit("response.in_progress",
         json::object{{"response", response_object(plan, identity, "in_progress", {})}});
  const auto out = mock_output_text(plan_for_text);
  std::int64_t index = 0;
  if (!out.thought.empty()) {
    const auto id = item_id("rs_", plan);
    b.emit("response.output_item.added",
           json::object{{"output_index", index}, {"item", reasoning_item(plan, "", false)}});
    b.emit("response.content_part.added",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"part", json::object{{"type", "reasoning_text"}, {"text", ""}}}});
    for (std::size_t i = plan.first_token; i < plan_for_text.end_token && mock_in_thought(plan, i); ++i) {
      b.emit("response.reasoning_text.delta",
             json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                          {"delta", mock_output_token(plan, i)}},
             true);
    }
    b.emit("response.reasoning_text.done",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"text", out.thought}});
    b.emit("response.content_part.done",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"part", json::object{{"type", "reasoning_text"}, {"text", out.thought}}}});
    b.emit("response.output_item.done",
           json::object{{"output_index", index}, {"item", reasoning_item(plan, out.thought, true)}});
    ++index;
  }
  const auto id = item_id("msg_", plan);
  b.emit("response.output_item.added",
         json::object{{"output_index", index}, {"item", message_item(plan, "", false)}});
  b.emit("response.content_part.added",
         json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                      {"part", output_text("")}});
  for (std::size_t i = std::max(plan.first_token, plan.thought_tokens); i < plan_for_text.end_token;
       ++i) {
    b.emit("response.output_text.delta",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"delta", mock_output_token(plan, i)}, {"logprobs", json::array{}}},
           true);
  }
  b.emit("response.output_text.done",
         json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                      {"text", out.answer}, {"logprobs", json::array{}}});
  b.emit("response.content_part.done",
         json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                      {"part", output_text(out.answer)}});
  b.emit("response.output_item.done",
         json::object{{"output_index", index}, {"item", message_item(plan, out.answer, true)}});
  auto output = final_output(plan, out);
  if (call) {
    ++index;
    const std::string call_item_id = item_id("fc_", plan);
    json::object item{{"id", call_item_id}, {"type", "function_call"},
                      {"call_id", mock_call_id(plan.seed)}, {"name", *tool},
                      {"arguments", ""}, {"status", "in_progress"}};
    b.emit("response.output_item.added", json::object{{"output_index", index}, {"item", item}});
    for (const auto piece : mock_argument_pieces(*call)) {
      b.emit("response.function_call_arguments.delta",
             json::object{{"item_id", call_item_id}, {"output_index", index}, {"delta", piece}},
             true);
    }
    b.emit("response.function_call_arguments.done",
           json::object{{"item_id", call_item_id}, {"output_index", index},
                        {"arguments", call->arguments}});
    item["arguments"] = call->arguments;
    item["status"] = "completed";
    b.emit("response.output_item.done", json::object{{"output_index", index}, {"item", item}});
    output.push_back(item);
  }
  const bool cut = plan.stopped_by_length;
  b.emit(cut ? "response.incomplete" : "response.completed",
         json::object{{"response", response_object(plan, identity, cut ? "incomplete" : "completed",
                                                   std::move(output))}});
  return std::move(b.events);
}

std::string mock_response_json(const mock_plan& plan, const mock_response_identity& identity) {
  const auto out = mock_output_text(plan);
  return json::serialize(response_object(plan, identity,
                                         plan.stopped_by_length ? "incomplete" : "completed",
                                         final_output(plan, out)));
}

}  // namespace nines::core
