#include "core/tools/mock_model.hpp"

#include <algorithm>
#include <array>
#include <boost/json/array.hpp>
#include <boost/json/string.hpp>

namespace nines::core {
namespace {

namespace json = boost::json;

constexpr std::array<std::string_view, 32> vocabulary = {
    "the ",    "agent ", "taps ",  "screen ", "button ", "opens ", "settings ", "scrolls ",
    "down ",   "then ",  "types ", "hello ",  "naïve ",  "café ",  "日本語 ",   "中文 ",
    "😀 ",     "→ ",     "ok ",    "wifi ",   "link ",   "stream ", "token ",   "model ",
    "phone ",  "reply ", "search ", "zoom ",  "back ",   "home ",  "swipe ",    "done ",
};

std::uint64_t mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::uint64_t fnv(std::string_view text, std::uint64_t h) {
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Hashes the text content of a message: a string, or an array of parts ({"type":"text"} and
// {"type":"image_url"}).
std::uint64_t hash_content(const json::value& content, std::uint64_t h) {
  if (const auto* s = content.if_string()) {
    return mock_text_hash(*s, h);
  }
  if (const auto* parts = content.if_array()) {
    for (const auto& part : *parts) {
      const auto* obj = part.if_object();
      if (obj == nullptr) {
        continue;
      }
      if (const auto* text = obj->if_contains("text"); text && text->is_string()) {
        h = mock_text_hash(text->get_string(), h);
      }
      if (const auto* image = obj->if_contains("image_url"); image && image->is_object()) {
        if (const auto* url = image->get_object().if_contains("url"); url && url->is_string()) {
          h = mock_text_hash(url->get_string(), h);
        }
      }
    }
  }
  return h;
}

std::string_view as_text(const json::value* v) {
  if (v != nullptr && v->is_string()) {
    return v->get_string();
  }
  return {};
}

std::size_t count_tokens(std::string_view text) {
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), ' '));
}

// Removes the answer tokens a completion prompt ends with; returns how many there were.
std::size_t strip_answer_tokens(std::string_view& prompt) {
  std::size_t n = 0;
  bool found = true;
  while (found) {
    found = false;
    for (auto token : vocabulary) {
      if (prompt.ends_with(token)) {
        prompt.remove_suffix(token.size());
        ++n;
        found = true;
        break;
      }
    }
  }
  return n;
}

std::size_t requested_max_tokens(const json::object& request) {
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (const auto* v = request.if_contains(key)) {
      if (v->is_int64() && v->get_int64() >= 0) {
        return static_cast<std::size_t>(v->get_int64());
      }
      if (v->is_uint64()) {
        return static_cast<std::size_t>(v->get_uint64());
      }
    }
  }
  return static_cast<std::size_t>(-1);
}

bool flag(const json::object& request, const char* key, bool fallback) {
  if (const auto* v = request.if_contains(key); v && v->is_bool()) {
    return v->get_bool();
  }
  return fallback;
}

}  // namespace

std::span<const std::string_view> mock_vocabulary() { return vocabulary; }

std::uint64_t mock_text_hash(std::string_view text, std::uint64_t h) {
  constexpr std::size_t sample = 4096;
  if (text.size() <= 2 * sample) {
    return fnv(text, h);
  }
  h = fnv(text.substr(0, sample), h);
  h = fnv(text.substr(text.size() - sample), h);
  return mix(h ^ text.size());
}

std::string_view mock_token(std::uint64_t seed, std::size_t position) {
  return vocabulary[mix(seed + 0x9e3779b97f4a7c15ULL * (position + 1)) % vocabulary.size()];
}

std::string mock_answer_text(std::uint64_t seed, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to; ++i) {
    out.append(mock_token(seed, i));
  }
  return out;
}

mock_tool_call plan_mock_tool_call(std::uint64_t seed, std::size_t answer_tokens) {
  mock_tool_call call;
  call.split = answer_tokens / 2;
  call.arguments = "{\"steps\": \"";
  for (std::size_t i = call.split; i < answer_tokens; ++i) {
    call.arguments += mock_token(seed, i);  // tokens need no JSON escaping
  }
  call.arguments += "\"}";
  return call;
}

bool plan_mock_answer(const json::object& request, bool chat, std::size_t answer_tokens,
                      mock_plan& plan, std::string& error) {
  std::uint64_t h = chat ? 0x1234 : 0x5678;
  std::size_t prompt_bytes = 0;
  plan = mock_plan{};
  if (chat) {
    const auto* messages = request.if_contains("messages");
    if (messages == nullptr || !messages->is_array() || messages->get_array().empty()) {
      error = "'messages' must be a non-empty array";
      return false;
    }
    const auto& list = messages->get_array();
    std::size_t used = list.size();
    const auto* last = list.back().if_object();
    if (last != nullptr && as_text(last->if_contains("role")) == "assistant" &&
        flag(request, "continue_final_message", false)) {
      used = list.size() - 1;
      plan.continuation = true;
      if (const auto* content = last->if_contains("content"); content && content->is_string()) {
        plan.first_token = count_tokens(content->get_string());
      }
    }
    for (std::size_t i = 0; i < used; ++i) {
      const auto* message = list[i].if_object();
      if (message == nullptr) {
        error = "each message must be an object";
        return false;
      }
      h = fnv(as_text(message->if_contains("role")), h);
      h = fnv("\x1f", h);
      if (const auto* content = message->if_contains("content")) {
        h = hash_content(*content, h);
        if (content->is_string()) {
          prompt_bytes += content->get_string().size();
        }
      }
      h = fnv("\x1e", h);
    }
  } else {
    const auto* prompt = request.if_contains("prompt");
    std::string_view text;
    if (prompt != nullptr && prompt->is_string()) {
      text = prompt->get_string();
    } else if (prompt != nullptr && prompt->is_array() && prompt->get_array().size() == 1 &&
               prompt->get_array()[0].is_string()) {
      text = prompt->get_array()[0].get_string();
    } else {
      error = "'prompt' must be a string";
      return false;
    }
    plan.first_token = strip_answer_tokens(text);
    plan.continuation = plan.first_token > 0;
    h = mock_text_hash(text, h);
    prompt_bytes = text.size();
  }
  plan.seed = mix(h);
  plan.prompt_tokens = prompt_bytes / 4 + 1;
  const std::size_t start = std::min(plan.first_token, answer_tokens);
  const std::size_t budget = requested_max_tokens(request);
  plan.first_token = start;
  plan.end_token = answer_tokens - start > budget ? start + budget : answer_tokens;
  plan.stopped_by_length = plan.end_token < answer_tokens;
  return true;
}

}  // namespace nines::core
