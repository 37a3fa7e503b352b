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

std::vector<mock_sse_event> mock_response_events(const mock_plan& plan,
                                                 const mock_response_identity& identity) {
  builder b{plan, identity, {}, 0};
  b.emit("response.created",
         json::object{{"response", response_object(plan, identity, "in_progress", {})}});
  b.emit("response.in_progress",
         json::object{{"response", response_object(plan, identity, "in_progress", {})}});
  const auto out = mock_output_text(plan);
  std::int64_t index = 0;
  if (!out.thought.empty()) {
    const auto id = item_id("rs_", plan);
    b.emit("response.output_item.added",
           json::object{{"output_index", index}, {"item", reasoning_item(plan, "", false)}});
    b.emit("response.content_part.added",
           json::object{{"item_id", id}, {"output_index", index}, {"content_index", 0},
                        {"part", json::object{{"type", "reasoning_text"}, {"text", ""}}}});
    for (std::size_t i = plan.first_token; i < plan.end_token && mock_in_thought(plan, i); ++i) {
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
  for (std::size_t i = std::max(plan.first_token, plan.thought_tokens); i < plan.end_token; ++i) {
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
  const bool cut = plan.stopped_by_length;
  b.emit(cut ? "response.incomplete" : "response.completed",
         json::object{{"response", response_object(plan, identity, cut ? "incomplete" : "completed",
                                                   final_output(plan, out))}});
  return std::move(b.events);
}

std::string mock_response_json(const mock_plan& plan, const mock_response_identity& identity) {
  const auto out = mock_output_text(plan);
  return json::serialize(response_object(plan, identity,
                                         plan.stopped_by_length ? "incomplete" : "completed",
                                         final_output(plan, out)));
}

}  // namespace nines::core
