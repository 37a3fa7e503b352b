#include "core/tools/mock_messages.hpp"

#include <boost/json.hpp>

namespace nines::core {

std::vector<mock_sse_event> mock_message_events(const mock_plan& plan, const std::string& id,
                                                const std::string& model) {
  namespace json = boost::json;
  std::vector<mock_sse_event> events;
  const auto emit = [&](std::string_view type, const json::object& fields, bool token = false) {
    json::object body{{"type", type}};
    for (const auto& [k, v] : fields) {
      body[k] = v;
    }
    events.push_back({"event: " + std::string(type) + "\ndata: " + json::serialize(body) + "\n\n",
                      token});
  };
  emit("message_start",
       {{"message", json::object{{"id", id}, {"type", "message"}, {"role", "assistant"},
                                 {"model", model}, {"content", json::array{}},
                                 {"stop_reason", nullptr},
                                 {"usage", json::object{{"input_tokens", plan.prompt_tokens},
                                                        {"output_tokens", 0}}}}}});
  emit("content_block_start",
       {{"index", 0}, {"content_block", json::object{{"type", "text"}, {"text", ""}}}});
  for (std::size_t i = plan.first_token; i < plan.end_token; ++i) {
    emit("content_block_delta",
         {{"index", 0},
          {"delta", json::object{{"type", "text_delta"}, {"text", mock_output_token(plan, i)}}}},
         true);
  }
  emit("content_block_stop", {{"index", 0}});
  emit("message_delta",
       {{"delta", json::object{{"stop_reason", plan.stopped_by_length ? "max_tokens" : "end_turn"}}},
        {"usage", json::object{{"output_tokens", plan.end_token - plan.first_token}}}});
  emit("message_stop", {});
  return events;
}

}  // namespace nines::core
