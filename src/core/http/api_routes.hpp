#pragma once
// Which requests may reach an upstream: an allow-list. Model servers serve more than the OpenAI
// API on the same port (vLLM: /metrics, /start_profile, /collective_rpc, /v1/load_lora_adapter,
// ...), so nothing is forwarded because it merely looks like an API path. Built in: the OpenAI
// routes nines knows —
//
//   POST /v1/chat/completions   POST /v1/completions   POST /v1/embeddings   POST /v1/responses
//   POST /v1/messages (Anthropic-style, served by vLLM)
//   GET  /v1/models             GET  /v1/models/**     (a model id may hold slashes)
//
// — and the operator adds `passthrough` patterns: "METHOD /v1/segment/..." where a segment `*`
// matches one path segment and a last segment `**` matches one or more. HEAD goes wherever GET
// does. Patterns match the canonical path (core/http/request_target.hpp), so an encoded variant
// of a path matches exactly when its decoded form does. Nothing outside /v1/ can be allowed.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

enum class api_route : std::uint8_t {
  chat_completions,
  completions,
  embeddings,
  responses,
  messages,
  models,
  model,        // GET /v1/models/{id}
  passthrough,  // a configured pattern
};

struct route_pattern {
  std::string method;                 // "GET", "POST", "PUT", "PATCH" or "DELETE"
  std::vector<std::string> segments;  // canonical segments after "/v1"; "*" and a last "**"
  api_route route = api_route::passthrough;
  std::string text;                   // as written, for messages
};

// Parses "POST /v1/tokenize"; what is wrong otherwise.
std::optional<std::string> parse_route_pattern(std::string_view text, route_pattern& out);

enum class route_match_kind : std::uint8_t { found, wrong_method, not_found };

struct route_match {
  route_match_kind kind = route_match_kind::not_found;
  api_route route = api_route::passthrough;
  std::string allow;  // for wrong_method: the methods the path takes, "GET, HEAD"
};

class route_table {
 public:
  explicit route_table(const std::vector<route_pattern>& passthrough = {});

  // `path`: canonical, as core::check_request_target makes it.
  route_match match(std::string_view method, std::string_view path) const;

 private:
  std::vector<route_pattern> patterns_;
};

}  // namespace nines::core
