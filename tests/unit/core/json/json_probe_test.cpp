#include "core/json/json_probe.hpp"

#include <gtest/gtest.h>

#include "core/json/json_text.hpp"
#include "core/http/openai_error.hpp"

namespace nines::core {
namespace {

TEST(json_probe, finds_top_level_stream_and_model_only) {
  auto r = probe_json(R"({"model":"glm","messages":[{"stream":false,"model":"x"}],"stream":true})");
  ASSERT_TRUE(r.valid);
  EXPECT_TRUE(r.facts.is_object);
  EXPECT_EQ(r.facts.stream, true);
  EXPECT_EQ(r.facts.model, "glm");
  EXPECT_FALSE(r.facts.has_error);
}

TEST(json_probe, reports_where_json_is_invalid) {
  auto r = probe_json(R"({"model": "glm", "stream": tru})");
  EXPECT_FALSE(r.valid);
  EXPECT_NE(r.error.find("invalid JSON at byte"), std::string::npos);
  EXPECT_FALSE(probe_json("").valid);
  EXPECT_FALSE(probe_json("{} trailing").valid);
}

TEST(json_probe, deep_nesting_is_rejected_not_a_crash) {
  std::string deep(100000, '[');
  EXPECT_FALSE(probe_json(deep).valid);
}

TEST(json_probe, detects_error_objects) {
  auto r = probe_json(R"({"error":{"message":"boom"}})");
  EXPECT_TRUE(r.facts.has_error);
  EXPECT_FALSE(probe_json("[1,2]").facts.is_object);
}

TEST(json_probe, reads_a_top_level_temperature_once) {
  EXPECT_EQ(probe_json(R"({"temperature":0})").facts.temperature, 0.0);
  EXPECT_EQ(probe_json(R"({"temperature":0.0})").facts.temperature, 0.0);
  EXPECT_EQ(probe_json(R"({"temperature":-0e3})").facts.temperature, 0.0);
  EXPECT_EQ(probe_json(R"({"temperature":0.7})").facts.temperature, 0.7);
  EXPECT_EQ(probe_json(R"({"temperature":2})").facts.temperature, 2.0);
  EXPECT_FALSE(probe_json(R"({"temperature":"0"})").facts.temperature);
  EXPECT_FALSE(probe_json(R"({"temperature":null})").facts.temperature);
  EXPECT_FALSE(probe_json(R"({"x":{"temperature":0}})").facts.temperature);
  EXPECT_FALSE(probe_json(R"({"temperature":{"a":0}})").facts.temperature);
  // Given twice, servers disagree on which one counts: nines reads neither.
  const auto twice = probe_json(R"({"temperature":0,"model":"m","temperature":0})");
  EXPECT_TRUE(twice.facts.temperature_repeated);
  EXPECT_FALSE(twice.facts.temperature);
  EXPECT_FALSE(probe_json(R"({"temperature":1,"temperature":0})").facts.temperature);
}

TEST(openai_error, body_and_event_shapes) {
  EXPECT_EQ(openai_error_body("t", "m \"q\"", "c"),
            R"({"error":{"message":"m \"q\"","type":"t","param":null,"code":"c"}})");
  auto event = openai_error_event("upstream_stream_broken", "x");
  EXPECT_TRUE(event.starts_with("data: {\"error\":"));
  EXPECT_TRUE(event.ends_with("}\n\n"));
}

TEST(json_text, escapes_controls_and_quotes) {
  std::string out;
  append_json_string(out, "a\"b\\c\n\x01é");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001é\"");
}

}  // namespace
}  // namespace nines::core
