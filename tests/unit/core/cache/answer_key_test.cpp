// The key-coverage fuzz of the answer cache (issue 14): a request changed in any field that can
// change its answer is never answered with the first one's answer, even though its lookup key is
// the same (a lookup key holds the head and the body's length only) — neither by the comparison
// of its body as it arrives, in pieces of any size, nor by the lookup's comparison of the rest
// (zero wrong hits); and the same request, however its body arrived, is found (hits happen).

#include "core/cache/answer_key.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "core/cache/answer_cache.hpp"
#include "core/random.hpp"

namespace nines::core {
namespace {

namespace json = boost::json;

// An Open-AutoGLM step: a system prompt, a screenshot, tools, and every sampling setting.
json::object base_request() {
  return json::parse(R"({
    "model": "autoglm-phone-9b",
    "messages": [
      {"role": "system", "content": "You operate an Android phone."},
      {"role": "user", "content": [
        {"type": "text", "text": "Open the settings app"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg"}}
      ]}
    ],
    "tools": [{"type": "function", "function": {"name": "tap", "parameters": {"type": "object",
      "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}}}],
    "tool_choice": "auto",
    "response_format": {"type": "text"},
    "temperature": 0,
    "top_p": 1,
    "top_k": -1,
    "stop": ["</answer>"],
    "seed": 7,
    "max_tokens": 3000,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "logit_bias": {"50256": -100},
    "n": 1,
    "logprobs": false,
    "stream": true,
    "stream_options": {"include_usage": true}
  })")
      .as_object();
}

// The fields whose value changes an answer, as JSON pointers into the request, and values to try.
struct field_mutation {
  std::string pointer;
  std::vector<json::value> values;
};

std::vector<field_mutation> mutations() {
  return {
      {"/model", {"autoglm-phone-9b-v2", "Autoglm-phone-9b", "autoglm-phone-9b "}},
      {"/messages/0/content", {"You operate an iPhone.", "", "You operate an Android phone"}},
      {"/messages/0/role", {"developer", "user"}},
      {"/messages/1/content/0/text", {"Open the settings app.", "open the settings app"}},
      {"/messages/1/content/1/image_url/url",
       {"data:image/png;base64,iVBORw0KGgoAAAANSUhEUh", "data:image/png;base64,"}},
      {"/tools/0/function/name", {"swipe", "Tap"}},
      {"/tools/0/function/parameters/properties/x/type", {"number"}},
      {"/tool_choice",
       {"none", "required", json::parse(R"({"type":"function","function":{"name":"tap"}})")}},
      {"/response_format",
       {json::parse(R"({"type":"json_object"})"),
        json::parse(R"({"type":"json_schema","json_schema":{"name":"a","schema":{}}})")}},
      {"/temperature", {0.0, 1e-9, -0.0, 1}},
      {"/top_p", {0.9, 1.0, 0.999999}},
      {"/top_k", {1, 50}},
      {"/stop", {json::array{}, json::array{"</answer>", "\n"}, "</answer>"}},
      {"/seed", {8, -7, 7.0, "7", nullptr}},
      {"/max_tokens", {2999, 3001, 30000}},
      {"/frequency_penalty", {0.1, -0.1}},
      {"/presence_penalty", {0.5}},
      {"/logit_bias", {json::parse(R"({"50256": -99})"), json::object{}}},
      {"/n", {2}},
      {"/logprobs", {true}},
      {"/stream", {false}},
      {"/stream_options/include_usage", {false}},
  };
}

// Sets the value at a JSON pointer (the path exists in the base request).
void set_at(json::value& root, const std::string& pointer, json::value v) {
  json::error_code ec;
  auto* at = root.find_pointer(pointer, ec);
  ASSERT_NE(at, nullptr) << pointer;
  *at = std::move(v);
}

// The body compared with the kept requests as the server reads it: in pieces of random sizes.
const answer_request* match_in_pieces(std::string_view body,
                                      std::vector<std::shared_ptr<const answer_request>> kept,
                                      rng& random) {
  body_candidates candidates(std::move(kept));
  while (!body.empty()) {
    const auto n = std::min<std::size_t>(body.size(), 1 + random.below(4096));
    candidates.take(body.substr(0, n));
    body.remove_prefix(n);
  }
  return candidates.match();
}

struct request_parts {
  std::string method = "POST";
  std::string target = "/v1/chat/completions";
  std::string identity = "agent-1";
  std::string headers = "content-type: application/json\r\nopenai-beta: assistants=v2\r\n";
  std::string body;
};

answer_request_view view_of(const request_parts& r) {
  return {r.method, r.target, r.identity, r.headers, r.body};
}

std::uint64_t key_of(const request_parts& r) {
  return answer_lookup_key(view_of(r), r.body.size());
}

TEST(answer_key, the_same_request_is_found_however_its_body_arrived) {
  splitmix_rng random(1);
  request_parts r;
  r.body = json::serialize(base_request());
  const auto kept = std::make_shared<const answer_request>(answer_request::of(view_of(r)));
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(match_in_pieces(r.body, {kept}, random), kept.get());
  }
  // The key is the head's and the length's: the body is not read for it.
  request_parts other = r;
  other.body.assign(r.body.size(), 'x');
  EXPECT_EQ(key_of(other), key_of(r));
  // Another length: another key.
  EXPECT_NE(answer_lookup_key(view_of(r), r.body.size() + 1), key_of(r));
  // A body that stops short, or goes on, is not the kept one.
  EXPECT_EQ(match_in_pieces(std::string_view(r.body).substr(0, r.body.size() - 1), {kept}, random),
            nullptr);
  EXPECT_EQ(match_in_pieces(r.body + " ", {kept}, random), nullptr);
  EXPECT_EQ(match_in_pieces("", {kept}, random), nullptr);
}

TEST(answer_key, key_coverage_fuzz_every_answer_affecting_change_misses) {
  splitmix_rng random(20261202);
  request_parts base;
  base.body = json::serialize(base_request());
  std::set<std::string> bodies{base.body};
  // The base request's answer, kept under lookup key 0; every changed request is looked up under
  // that same key, as if their keys collided, and its body is compared with the base's as it
  // arrives: only the byte-for-byte comparisons stand between it and the base's answer.
  answer_cache cache({1u << 24, 1u << 24, std::chrono::seconds(60)});
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  cached_answer kept;
  kept.body = "the base request's answer";
  cache.store(0, answer_request::of(view_of(base)), kept, t0, 0);
  ASSERT_TRUE(cache.lookup(0, view_of(base), t0));
  const auto base_kept = cache.candidates(0, base.body.size(), 4);
  ASSERT_EQ(base_kept.size(), 1u);
  unsigned tried = 0;
  const auto expect_new = [&](const request_parts& r, const std::string& what) {
    ++tried;
    const auto* matched = match_in_pieces(r.body, base_kept, random);
    if (r.body != base.body) {
      EXPECT_EQ(matched, nullptr) << what << ": its body matched the base's";
    }
    EXPECT_FALSE(cache.lookup(0, view_of(r), t0, matched)) << what << " got the base's answer";
    bodies.insert(r.body);
  };
  // One field at a time, through every value; then random combinations of two to four.
  const auto all = mutations();
  for (const auto& m : all) {
    for (const auto& v : m.values) {
      json::value changed = base_request();
      set_at(changed, m.pointer, v);
      request_parts r = base;
      r.body = json::serialize(changed);
      expect_new(r, m.pointer + " = " + json::serialize(v));
    }
    // The field left out.
    json::value without = base_request();
    const auto slash = m.pointer.rfind('/');
    json::error_code ec;
    auto* parent = without.find_pointer(m.pointer.substr(0, slash), ec);
    if (parent != nullptr && parent->is_object()) {
      parent->as_object().erase(m.pointer.substr(slash + 1));
      request_parts r = base;
      r.body = json::serialize(without);
      expect_new(r, m.pointer + " left out");
    }
  }
  for (int round = 0; round < 2000; ++round) {
    json::value changed = base_request();
    std::string what;
    const auto count = 2 + random.below(3);
    for (std::uint64_t i = 0; i < count; ++i) {
      const auto& m = all[random.below(all.size())];
      const auto& v = m.values[random.below(m.values.size())];
      set_at(changed, m.pointer, v);
      what += m.pointer + " ";
    }
    request_parts r = base;
    r.body = json::serialize(changed);
    expect_new(r, what);
  }
  // A field nines does not know (a server's own sampling setting) counts too.
  {
    json::value changed = base_request();
    changed.as_object()["repetition_penalty"] = 1.05;
    request_parts r = base;
    r.body = json::serialize(changed);
    expect_new(r, "an unknown field added");
  }
  // Spacing only: another key too (a miss, never a wrong hit).
  {
    request_parts r = base;
    r.body = json::serialize(base_request()) + " ";
    expect_new(r, "a trailing space");
  }
  // Outside the body: who asks, where, and the headers that go upstream.
  // (The body is the base one, and matches as it arrives: the rest must tell them apart.)
  const auto expect_new_key = [&](const request_parts& r, const std::string& what) {
    ++tried;
    const auto* matched = match_in_pieces(r.body, base_kept, random);
    EXPECT_EQ(matched, base_kept[0].get());
    EXPECT_FALSE(cache.lookup(0, view_of(r), t0, matched)) << what << " got the base's answer";
    EXPECT_NE(key_of(r), key_of(base)) << what << " has the base's lookup key";
  };
  for (const auto& id : {"agent-2", "", "agent-1 "}) {
    request_parts r = base;
    r.identity = id;
    expect_new_key(r, std::string("identity ") + id);
  }
  for (const auto& target : {"/v1/completions", "/v1/chat/completions?x=1", "/v1/embeddings"}) {
    request_parts r = base;
    r.target = target;
    expect_new_key(r, target);
  }
  for (const auto& headers : {"content-type: application/json\r\n",
                              "content-type: application/json\r\nopenai-beta: v3\r\n",
                              "openai-beta: assistants=v2\r\ncontent-type: application/json\r\n"}) {
    request_parts r = base;
    r.headers = headers;
    expect_new_key(r, headers);
  }
  {
    request_parts r = base;
    r.method = "PUT";
    expect_new_key(r, "method");
  }
  // Parts are length-prefixed: moving bytes from one part to the next is another key.
  {
    request_parts r = base;
    r.identity = "agent-1content-type";
    r.headers = base.headers.substr(std::string("content-type").size());
    expect_new_key(r, "bytes moved between parts");
  }
  EXPECT_GT(tried, 2000u);
}

}  // namespace
}  // namespace nines::core
