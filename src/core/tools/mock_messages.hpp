#pragma once
// Anthropic-style messages (POST /v1/messages, which vLLM also serves) as `nines mock-llm` streams
// them: message_start, content_block_start, a content_block_delta (text_delta) per answer token,
// content_block_stop, message_delta (stop_reason, usage), message_stop. The answer is the chat
// answer to the same messages (core/tools/mock_model.hpp).

#include <string>
#include <vector>

#include "core/tools/mock_model.hpp"
#include "core/tools/mock_responses.hpp"

namespace nines::core {

std::vector<mock_sse_event> mock_message_events(const mock_plan& plan, const std::string& id,
                                                const std::string& model);

}  // namespace nines::core
