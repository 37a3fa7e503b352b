#include "core/http/api_routes.hpp"

#include <fmt/format.h>

#include "core/http/request_target.hpp"

namespace nines::core {
namespace {

// The segments of a canonical path after its leading "/v1", or nullopt when it is not under /v1/.
std::optional<std::vector<std::string_view>> segments_under_v1(std::string_view path) {
  if (!path.starts_with("/v1/")) {
    return std::nullopt;
  }
  std::vector<std::string_view> out;
  path.remove_prefix(4);
  for (;;) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool segments_match(const route_pattern& p, const std::vector<std::string_view>& s) {
  const bool tail = !p.segments.empty() && p.segments.back() == "**";
  const std::size_t fixed = p.segments.size() - (tail ? 1 : 0);
  if (tail ? s.size() <= fixed : s.size() != fixed) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i].empty()) {
      return false;  // a trailing slash names no resource
    }
    if (i < fixed && p.segments[i] != "*" && p.segments[i] != s[i]) {
      return false;
    }
  }
  return true;
}

bool method_matches(std::string_view pattern_method, std::string_view method) {
  return pattern_method == method || (pattern_method == "GET" && method == "HEAD");
}

route_pattern builtin(std::string method, std::string path, api_route route) {
  route_pattern p;
  const std::string text = method + " " + path;
  parse_route_pattern(text, p);
  p.route = route;
  return p;
}

}  // namespace

std::optional<std::string> parse_route_pattern(std::string_view text, route_pattern& out) {
  out = route_pattern{};
  out.text = std::string(text);
  const auto space = text.find(' ');
  if (space == std::string_view::npos) {
    return std::string("must be \"METHOD /v1/path\", e.g. \"POST /v1/tokenize\"");
  }
  const std::string_view method = text.substr(0, space);
  if (method != "GET" && method != "POST" && method != "PUT" && method != "PATCH" &&
      method != "DELETE") {
    return fmt::format("method \"{}\" must be GET, POST, PUT, PATCH or DELETE (HEAD goes with GET)",
                       method);
  }
  out.method = std::string(method);
  const std::string_view path = text.substr(space + 1);
  canonical_target canonical;
  if (auto why = check_request_target(path, canonical)) {
    return "path: " + *why;
  }
  if (canonical.has_query) {
    return std::string("path must not have a query");
  }
  const auto segments = segments_under_v1(canonical.path);
  if (!segments) {
    return std::string("path must start with \"/v1/\": nothing outside /v1/ is forwarded");
  }
  for (std::size_t i = 0; i < segments->size(); ++i) {
    const auto s = (*segments)[i];
    if (s.empty()) {
      return std::string("path must not end in \"/\"");
    }
    if (s == "**" && i + 1 != segments->size()) {
      return std::string("\"**\" may only be the last segment");
    }
    out.segments.emplace_back(s);
  }
  out.route = api_route::passthrough;
  return std::nullopt;
}

route_table::route_table(const std::vector<route_pattern>& passthrough) {
  patterns_.push_back(builtin("POST", "/v1/chat/completions", api_route::chat_completions));
  patterns_.push_back(builtin("POST", "/v1/completions", api_route::completions));
  patterns_.push_back(builtin("POST", "/v1/embeddings", api_route::embeddings));
  patterns_.push_back(builtin("POST", "/v1/responses", api_route::responses));
  patterns_.push_back(builtin("POST", "/v1/messages", api_route::messages));
  patterns_.push_back(builtin("GET", "/v1/models", api_route::models));
  patterns_.push_back(builtin("GET", "/v1/models/**", api_route::model));
  patterns_.insert(patterns_.end(), passthrough.begin(), passthrough.end());
}

route_match route_table::match(std::string_view method, std::string_view path) const {
  route_match out;
  const auto segments = segments_under_v1(path);
  if (!segments) {
    return out;
  }
  for (const auto& p : patterns_) {
    if (!segments_match(p, *segments)) {
      continue;
    }
    if (method_matches(p.method, method)) {
      out.kind = route_match_kind::found;
      out.route = p.route;
      out.allow.clear();
      return out;
    }
    out.kind = route_match_kind::wrong_method;
    if (out.allow.find(p.method) == std::string::npos) {
      out.allow += (out.allow.empty() ? "" : ", ") + p.method;
      if (p.method == "GET") {
        out.allow += ", HEAD";
      }
    }
  }
  return out;
}

}  // namespace nines::core
