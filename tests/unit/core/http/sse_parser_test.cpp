#include "core/http/sse_parser.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using namespace std::string_literals;

std::vector<sse_event> parse_all(std::string_view text) {
  sse_parser p;
  std::vector<sse_event> out;
  EXPECT_EQ(p.feed(text, out), sse_error::none);
  return out;
}

// Feeds `text` split at every pair of positions and checks the events are always the same.
void expect_split_invariant(std::string_view text) {
  const auto whole = parse_all(text);
  for (std::size_t i = 0; i <= text.size(); ++i) {
    for (std::size_t j = i; j <= text.size(); ++j) {
      sse_parser p;
      std::vector<sse_event> out;
      p.feed(text.substr(0, i), out);
      p.feed(text.substr(i, j - i), out);
      p.feed(text.substr(j), out);
      ASSERT_EQ(out.size(), whole.size()) << "split at " << i << "," << j;
      for (std::size_t k = 0; k < out.size(); ++k) {
        ASSERT_EQ(out[k].data, whole[k].data) << "split at " << i << "," << j;
        ASSERT_EQ(out[k].type, whole[k].type);
        ASSERT_EQ(out[k].id, whole[k].id);
      }
    }
  }
}

TEST(sse_parser, data_lines_join_with_newline_and_one_space_is_stripped) {
  auto events = parse_all("data: first\ndata:second\ndata:  third\n\n");
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].data, "first\nsecond\n third");
  EXPECT_EQ(events[0].type, "");
}

TEST(sse_parser, all_three_line_endings) {
  auto events = parse_all("data: a\r\n\r\ndata: b\r\rdata: c\n\n");
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[0].data, "a");
  EXPECT_EQ(events[1].data, "b");
  EXPECT_EQ(events[2].data, "c");
}

TEST(sse_parser, comments_and_unknown_fields_are_ignored) {
  auto events = parse_all(": keep-alive\nfoo: bar\ndata: x\n: more\n\n");
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].data, "x");
}

TEST(sse_parser, event_without_data_is_not_dispatched) {
  auto events = parse_all("event: ping\n\ndata\n\n");
  // "data" with no colon is a data field with an empty value: dispatched as "".
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].data, "");
  EXPECT_EQ(events[0].type, "");  // the type buffer was reset by the blank line before
}

TEST(sse_parser, id_persists_and_nul_ids_are_ignored) {
  auto events = parse_all("id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\n"s);
  ASSERT_EQ(events.size(), 3U);
  EXPECT_EQ(events[0].id, "7");
  EXPECT_EQ(events[1].id, "7");
  EXPECT_EQ(events[2].id, "7");
}

TEST(sse_parser, retry_must_be_digits) {
  auto events = parse_all("retry: 1500\ndata: a\n\nretry: 1s\ndata: b\n\n");
  ASSERT_EQ(events.size(), 2U);
  EXPECT_EQ(events[0].retry_ms, 1500ULL);
  EXPECT_FALSE(events[1].retry_ms);
}

TEST(sse_parser, leading_bom_is_skipped_even_when_split) {
  sse_parser p;
  std::vector<sse_event> out;
  p.feed("\xEF", out);
  p.feed("\xBB\xBF" "data: a\n\n", out);
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].data, "a");
}

TEST(sse_parser, incomplete_trailing_event_is_not_dispatched) {
  sse_parser p;
  std::vector<sse_event> out;
  p.feed("data: a\n\ndata: partial", out);
  EXPECT_EQ(out.size(), 1U);
  EXPECT_FALSE(p.at_event_boundary());
}

TEST(sse_parser, every_split_position_gives_the_same_events) {
  expect_split_invariant("data: {\"a\":1}\r\n\r\n: c\rid: 9\revent: e\rdata: x\r\rdata: [DONE]\n\n");
}

TEST(sse_parser, utf8_split_inside_a_character_is_rejoined) {
  // "日本語 😀" split at every byte: each multi-byte character is cut somewhere.
  expect_split_invariant("data: {\"content\":\"日本語 😀 café\"}\n\n");
  auto events = parse_all("data: 日本語 😀\n\n");
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].data, "日本語 😀");
}

TEST(sse_parser, oversize_event_is_an_error_not_unbounded_growth) {
  sse_parser p(64);
  std::vector<sse_event> out;
  EXPECT_EQ(p.feed("data: " + std::string(100, 'x'), out), sse_error::event_too_large);
  EXPECT_EQ(p.feed("\n\n", out), sse_error::event_too_large);  // stays failed
  sse_parser q(64);
  std::string many;
  for (int i = 0; i < 20; ++i) {
    many += "data: 0123456789\n";
  }
  EXPECT_EQ(q.feed(many, out), sse_error::event_too_large);
}

// A client that records an id as soon as it reads the field (fetch-event-source) and loses the
// connection before the blank line would skip the event on reconnect: the id goes last, so that
// only the loss of exactly the final byte can do that.
TEST(sse_parser, serialisation_round_trips_with_the_id_last) {
  sse_event e;
  e.id = "12";
  e.type = "delta";
  e.data = "line1\nline2";
  std::string text;
  append_sse_event(text, e);
  EXPECT_EQ(text, "event: delta\ndata: line1\ndata: line2\nid: 12\n\n");
  auto back = parse_all(text);
  ASSERT_EQ(back.size(), 1U);
  EXPECT_EQ(back[0].data, e.data);
  EXPECT_EQ(back[0].type, e.type);
  EXPECT_EQ(back[0].id, e.id);
}

// A kept answer is sent again without the ids of the stream it was recorded from; the data of its
// events (a line of text that reads "id: 3" included) is untouched.
TEST(sse_parser, ids_are_taken_out_of_canonical_events_and_nothing_else) {
  std::string text;
  for (const auto* data : {"{\"a\":1}", "id: 3\nid: 4", "[DONE]"}) {
    sse_event e;
    e.id = "req-7:1";
    e.type = data[0] == '[' ? "" : "message";
    e.data = data;
    append_sse_event(text, e);
  }
  const auto stripped = without_event_ids(text);
  EXPECT_EQ(stripped,
            "event: message\ndata: {\"a\":1}\n\nevent: message\ndata: id: 3\ndata: id: 4\n\n"
            "data: [DONE]\n\n");
  const auto back = parse_all(stripped);
  ASSERT_EQ(back.size(), 3U);
  EXPECT_EQ(back[1].data, "id: 3\nid: 4");
  EXPECT_FALSE(back[1].id);
  EXPECT_EQ(without_event_ids(stripped), stripped);
}

}  // namespace
}  // namespace nines::core
