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
      } else if (image && image->is_string()) {
        h = mock_text_hash(image->get_string(), h);  // a Responses input_image
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
  for (const char* key : {"max_completion_tokens", "max_tokens", "max_output_tokens"}) {
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

namespace {

// How much of a reasoning answer a continuation's assistant text already holds; `closed` tells
// whether the thought ended in it (so that the continuation's output holds no "</think>").
std::size_t produced_positions(std::string_view content, std::size_t thought_tokens, bool& closed) {
  closed = false;
  if (thought_tokens == 0) {
    return count_tokens(content);
  }
  if (content.starts_with("<think>")) {
    content.remove_prefix(7);
    const auto end = content.find("</think>");
    if (end == std::string_view::npos) {
      return std::min(count_tokens(content), thought_tokens);
    }
    closed = true;
    return thought_tokens + count_tokens(content.substr(end + 8));
  }
  // No thought carried: an empty prefix starts over, text is taken for the answer.
  closed = !content.empty();
  return content.empty() ? 0 : thought_tokens + count_tokens(content);
}

// One message's contribution to the prompt hash.
std::uint64_t hash_message(std::string_view role, const json::value* content, std::uint64_t h,
                           std::size_t& prompt_bytes) {
  h = fnv(role, h);
  h = fnv("\x1f", h);
  if (content != nullptr) {
    h = hash_content(*content, h);
    if (content->is_string()) {
      prompt_bytes += content->get_string().size();
    }
  }
  return fnv("\x1e", h);
}

// The Responses API's prompt as the messages it stands for. Returns false when `input` is
// neither a string nor an array of items.
bool hash_responses_input(const json::object& request, std::uint64_t& h, std::size_t& prompt_bytes,
                          std::string& error) {
  if (const auto* instructions = request.if_contains("instructions");
      instructions && instructions->is_string()) {
    h = hash_message("system", instructions, h, prompt_bytes);
  }
  const auto* input = request.if_contains("input");
  if (input != nullptr && input->is_string()) {
    h = hash_message("user", input, h, prompt_bytes);
    return true;
  }
  if (input == nullptr || !input->is_array() || input->get_array().empty()) {
    error = "'input' must be a string or a non-empty array";
    return false;
  }
  for (const auto& item : input->get_array()) {
    const auto* o = item.if_object();
    if (o == nullptr) {
      error = "each input item must be an object";
      return false;
    }
    const auto type = as_text(o->if_contains("type"));
    if (type == "function_call") {
      h = hash_message("assistant", nullptr, h, prompt_bytes);
    } else if (type == "function_call_output") {
      h = hash_message("tool", o->if_contains("output"), h, prompt_bytes);
    } else {
      h = hash_message(as_text(o->if_contains("role")), o->if_contains("content"), h, prompt_bytes);
    }
  }
  return true;
}

}  // namespace

std::vector<std::string_view> mock_argument_pieces(const mock_tool_call& call) {
  const std::string_view args = call.arguments;
  const std::size_t piece = (args.size() + call.pieces - 1) / call.pieces;
  std::vector<std::string_view> pieces;
  for (std::size_t at = 0; at < args.size();) {
    std::size_t end = std::min(args.size(), at + piece);
    while (end < args.size() && (static_cast<unsigned char>(args[end]) & 0xC0) == 0x80) {
      ++end;
    }
    pieces.push_back(args.substr(at, end - at));
    at = end;
  }
  return pieces;
}

std::string mock_call_id(std::uint64_t seed) { return "call_" + std::to_string(seed % 1000000); }

bool plan_mock_answer(const json::object& request, bool chat, std::size_t answer_tokens,
                      mock_plan& plan, std::string& error) {
  return plan_mock_answer(request, chat ? mock_api::chat : mock_api::completions, answer_tokens, 0,
                          plan, error);
}

std::string_view mock_output_token(const mock_plan& plan, std::size_t position) {
  if (position < plan.thought_tokens) {
    return mock_token(mix(plan.seed ^ 0x7468696e6bULL), position);  // "think"
  }
  return mock_token(plan.seed, position - plan.thought_tokens);
}

mock_output mock_output_text(const mock_plan& plan) {
  mock_output out;
  for (std::size_t i = plan.first_token; i < plan.end_token; ++i) {
    (mock_in_thought(plan, i) ? out.thought : out.answer).append(mock_output_token(plan, i));
  }
  return out;
}

bool plan_mock_answer(const json::object& request, mock_api api, std::size_t answer_tokens,
                      std::size_t thought_tokens, mock_plan& plan, std::string& error) {
  const bool chat = api == mock_api::chat;
  std::uint64_t h = api == mock_api::completions ? 0x5678 : 0x1234;
  std::size_t prompt_bytes = 0;
  plan = mock_plan{};
  plan.thought_tokens = thought_tokens;
  if (api == mock_api::responses) {
    if (!hash_responses_input(request, h, prompt_bytes, error)) {
      return false;
    }
  } else if (chat) {
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
        plan.first_token =
            produced_positions(content->get_string(), thought_tokens, plan.thought_closed);
      }
    }
    for (std::size_t i = 0; i < used; ++i) {
      const auto* message = list[i].if_object();
      if (message == nullptr) {
        error = "each message must be an object";
        return false;
      }
      h = hash_message(as_text(message->if_contains("role")), message->if_contains("content"), h,
                       prompt_bytes);
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
    plan.thought_tokens = 0;  // completions carry no parsed thought
    h = mock_text_hash(text, h);
    prompt_bytes = text.size();
  }
  plan.seed = mix(h);
  plan.prompt_tokens = prompt_bytes / 4 + 1;
  const std::size_t total = answer_tokens + plan.thought_tokens;
  const std::size_t start = std::min(plan.first_token, total);
  const std::size_t budget = requested_max_tokens(request);
  plan.first_token = start;
  plan.end_token = total - start > budget ? start + budget : total;
  plan.stopped_by_length = plan.end_token < total;
  return true;
}

}  // namespace nines::core
