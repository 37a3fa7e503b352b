#include "core/stream/stream_dialect.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace nines::core {
namespace {

namespace json = boost::json;

TEST(stream_dialect, each_route_has_the_dialect_of_its_api) {
  EXPECT_EQ(dialect_of(api_route::chat_completions), stream_dialect::openai_chunks);
  EXPECT_EQ(dialect_of(api_route::completions), stream_dialect::openai_chunks);
  EXPECT_EQ(dialect_of(api_route::responses), stream_dialect::responses);
  EXPECT_EQ(dialect_of(api_route::messages), stream_dialect::messages);
  EXPECT_EQ(dialect_of(api_route::passthrough), stream_dialect::opaque);
}

TEST(stream_dialect, a_typed_event_is_read_from_its_top_level_fields_only) {
  auto e = read_typed_event(
      R"({"type":"response.output_text.delta","item":{"type":"message"},"sequence_number":7,"delta":"x"})");
  EXPECT_TRUE(e.valid);
  EXPECT_EQ(e.type, "response.output_text.delta");
  EXPECT_EQ(e.sequence_number, 7);
  // A nested "type" or "sequence_number" is not the event's.
  auto nested = read_typed_event(R"({"response":{"type":"x","sequence_number":3},"type":"y"})");
  EXPECT_EQ(nested.type, "y");
  EXPECT_FALSE(nested.sequence_number);
  // Not an object, no type, a type that is not a string, a repeated type, half an object: no
  // event to judge, so the stream counts as broken (malformed).
  for (const char* bad : {"[]", R"({"delta":"x"})", R"({"type":3})", R"({"type":"a","type":"b"})",
                          R"({"type":"resp)", "", R"({"type":"a","n":1e999})"}) {
    EXPECT_FALSE(read_typed_event(bad).valid) << bad;
  }
}

TEST(stream_dialect, only_the_apis_own_final_events_end_a_stream) {
  for (const char* t : {"response.completed", "response.failed", "response.incomplete"}) {
    EXPECT_TRUE(is_terminal_event(stream_dialect::responses, t)) << t;
  }
  EXPECT_FALSE(is_terminal_event(stream_dialect::responses, "response.output_item.done"));
  EXPECT_FALSE(is_terminal_event(stream_dialect::responses, "message_stop"));
  EXPECT_TRUE(is_terminal_event(stream_dialect::messages, "message_stop"));
  EXPECT_FALSE(is_terminal_event(stream_dialect::messages, "message_delta"));
  EXPECT_FALSE(is_terminal_event(stream_dialect::opaque, "message_stop"));
}

TEST(stream_dialect, the_incomplete_signal_is_in_each_apis_own_form) {
  auto r = make_incomplete_event(stream_dialect::responses, "broke \"here\"", 41);
  EXPECT_EQ(r.type, "error");
  auto o = json::parse(r.data).as_object();
  EXPECT_EQ(o["type"].as_string(), "error");
  EXPECT_EQ(o["code"].as_string(), "stream_incomplete");
  EXPECT_EQ(o["message"].as_string(), "broke \"here\"");
  EXPECT_EQ(o["sequence_number"].to_number<int>(), 42);
  EXPECT_EQ(o["error"].as_object()["type"].as_string(), "stream_incomplete");
  EXPECT_EQ(json::parse(make_incomplete_event(stream_dialect::responses, "m", std::nullopt).data)
                .as_object()["sequence_number"]
                .to_number<int>(),
            0);
  auto m = make_incomplete_event(stream_dialect::messages, "gone", std::nullopt);
  EXPECT_EQ(m.type, "error");
  auto mo = json::parse(m.data).as_object();
  EXPECT_EQ(mo["type"].as_string(), "error");
  EXPECT_EQ(mo["error"].as_object()["type"].as_string(), "api_error");
  auto c = make_incomplete_event(stream_dialect::openai_chunks, "x", std::nullopt);
  EXPECT_TRUE(c.type.empty());
  EXPECT_EQ(json::parse(c.data).as_object()["error"].as_object()["type"].as_string(),
            "stream_incomplete");
}

TEST(stream_dialect, the_next_sequence_number_never_overflows) {
  auto r = make_incomplete_event(stream_dialect::responses, "m", INT64_MAX);
  EXPECT_NE(r.data.find("\"sequence_number\":9223372036854775807"), std::string::npos) << r.data;
}

}  // namespace
}  // namespace nines::core
