#pragma once
// OpenAI-style error bodies, as clients and SDKs parse them:
//   {"error": {"message": "...", "type": "...", "param": null, "code": "..."}}
// Used for every answer the gateway makes itself (400, 404, 413, 502, ...) and for the final SSE
// event of a stream that could not be completed.

#include <string>
#include <string_view>

namespace nines::core {

std::string openai_error_body(std::string_view type, std::string_view message,
                              std::string_view code = {});

// "data: {error...}\n\n": the last event of a stream that ends without [DONE].
std::string openai_error_event(std::string_view type, std::string_view message,
                               std::string_view code = {});

}  // namespace nines::core
