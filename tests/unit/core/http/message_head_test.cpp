#include "core/http/message_head.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nines::core {
namespace {

using namespace std::string_literals;

// Scans `bytes` as one buffer; the head's length, or 0 with `problem` set.
std::size_t scan_all(std::string_view bytes, head_problem& problem, std::size_t max = 65536) {
  head_scanner s(max);
  return s.scan(bytes, problem);
}

head_problem parse_request(const std::string& head, request_head& out, std::size_t max_fields = 100) {
  head_problem p = head_problem::none;
  const auto n = scan_all(head, p);
  if (p != head_problem::none) {
    return p;
  }
  EXPECT_EQ(n, head.size()) << "the whole text is one head";
  return parse_request_head(std::string_view(head).substr(0, n), max_fields, out);
}

TEST(head_scanner, finds_the_end_of_a_head_fed_one_byte_at_a_time) {
  const std::string text = "GET / HTTP/1.1\r\nHost: a\r\n\r\nNEXT";
  head_scanner s(1024);
  head_problem p = head_problem::none;
  std::size_t found = 0;
  for (std::size_t i = 1; i <= text.size() && found == 0; ++i) {
    found = s.scan(std::string_view(text).substr(0, i), p);
    ASSERT_EQ(p, head_problem::none) << "at " << i;
  }
  EXPECT_EQ(found, text.size() - 4);
}

TEST(head_scanner, refuses_bare_line_endings_wherever_they_are) {
  for (const auto& text : {"GET / HTTP/1.1\nHost: a\r\n\r\n"s, "GET / HTTP/1.1\r\nHost: a\n\r\n"s,
                           "GET / HTTP/1.1\r\nHost: a\r\n\n"s, "GET / HTTP/1.1\rHost: a\r\n\r\n"s,
                           "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"s}) {
    head_problem p = head_problem::none;
    EXPECT_EQ(scan_all(text, p), 0U) << text;
    EXPECT_EQ(p, head_problem::bare_line_ending) << text;
  }
}

TEST(head_scanner, a_cr_at_the_end_of_the_bytes_waits_for_the_next_byte) {
  head_scanner s(1024);
  head_problem p = head_problem::none;
  EXPECT_EQ(s.scan("GET / HTTP/1.1\r", p), 0U);
  EXPECT_EQ(p, head_problem::none);
  EXPECT_EQ(s.scan("GET / HTTP/1.1\rX", p), 0U);
  EXPECT_EQ(p, head_problem::bare_line_ending);
}

TEST(head_scanner, a_head_longer_than_the_limit_is_too_large) {
  head_problem p = head_problem::none;
  const std::string text = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a');
  EXPECT_EQ(scan_all(text, p, 64), 0U);
  EXPECT_EQ(p, head_problem::too_large);
  // Exactly at the limit, complete: accepted.
  const std::string fits = "GET / HTTP/1.1\r\n\r\n";
  EXPECT_EQ(scan_all(fits, p, fits.size()), fits.size());
  EXPECT_EQ(p, head_problem::none);
}

TEST(request_head, reads_the_request_line_and_trims_field_values) {
  request_head h;
  const std::string text =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
      "Content-Type:  application/json \t\r\nX-Empty:\r\n\r\n";
  ASSERT_EQ(parse_request(text, h), head_problem::none);  // h holds views into text
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/v1/chat/completions");
  EXPECT_EQ(h.version, 11U);
  ASSERT_EQ(h.fields.size(), 3U);
  EXPECT_EQ(h.fields[1].name, "Content-Type");
  EXPECT_EQ(h.fields[1].value, "application/json");
  EXPECT_EQ(h.fields[2].value, "");
}

TEST(request_head, refuses_each_malformation_with_its_reason) {
  const std::pair<std::string, head_problem> cases[] = {
      {"GET  / HTTP/1.1\r\n\r\n", head_problem::bad_start_line},
      {"GET / HTTP/1.1 \r\n\r\n", head_problem::bad_start_line},
      {"GET /\r\n\r\n", head_problem::bad_start_line},
      {" GET / HTTP/1.1\r\n\r\n", head_problem::bad_start_line},
      {"G(T / HTTP/1.1\r\n\r\n", head_problem::bad_method},
      {"GET /a\x7f HTTP/1.1\r\n\r\n", head_problem::bad_target},
      {"GET /\xc3\xa9 HTTP/1.1\r\n\r\n", head_problem::bad_target},
      {"GET / HTTP/1.1x\r\n\r\n", head_problem::bad_version},
      {"GET / http/1.1\r\n\r\n", head_problem::bad_version},
      {"GET / HTTP/2.0\r\n\r\n", head_problem::unsupported_version},
      {"GET / HTTP/1.2\r\n\r\n", head_problem::unsupported_version},
      {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", head_problem::obs_fold},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", head_problem::bad_field_name},
      {"GET / HTTP/1.1\r\n: a\r\n\r\n", head_problem::bad_field_name},
      {"GET / HTTP/1.1\r\nNo colon\r\n\r\n", head_problem::bad_field_name},
      {"GET / HTTP/1.1\r\nX(y): a\r\n\r\n", head_problem::bad_field_name},
      {"GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n", head_problem::bad_field_value},
      {"GET / HTTP/1.1\r\nX: a"s + '\0' + "z\r\n\r\n", head_problem::bad_field_value},
      {"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n", head_problem::bad_field_value},
  };
  for (const auto& [text, problem] : cases) {
    request_head h;
    EXPECT_EQ(parse_request(text, h), problem) << text;
  }
}

TEST(request_head, obs_text_in_a_value_is_kept) {
  request_head h;
  const std::string text = "GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n";
  ASSERT_EQ(parse_request(text, h), head_problem::none);
  EXPECT_EQ(h.fields[0].value, "caf\xc3\xa9");
}

TEST(request_head, more_fields_than_allowed_are_refused) {
  std::string text = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 101; ++i) {
    text += "X-" + std::to_string(i) + ": v\r\n";
  }
  text += "\r\n";
  request_head h;
  EXPECT_EQ(parse_request(text, h, 100), head_problem::too_many_fields);
  EXPECT_EQ(parse_request(text, h, 101), head_problem::none);
}

TEST(response_head, reads_status_lines_with_and_without_a_reason) {
  response_head h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n", 100, h),
            head_problem::none);
  EXPECT_EQ(h.status, 503U);
  EXPECT_EQ(h.reason, "Service Unavailable");
  ASSERT_EQ(h.fields.size(), 1U);
  ASSERT_EQ(parse_response_head("HTTP/1.0 204\r\n\r\n", 100, h), head_problem::none);
  EXPECT_EQ(h.status, 204U);
  EXPECT_EQ(h.version, 10U);
  EXPECT_EQ(h.reason, "");
}

TEST(response_head, refuses_malformed_status_lines) {
  const std::pair<std::string, head_problem> cases[] = {
      {"HTTP/1.1 20 OK\r\n\r\n", head_problem::bad_status},
      {"HTTP/1.1 20\r\n\r\n", head_problem::bad_start_line},
      {"HTTP/1.1 2000 OK\r\n\r\n", head_problem::bad_status},
      {"HTTP/1.1 099 OK\r\n\r\n", head_problem::bad_status},
      {"HTTP/1.1 600 OK\r\n\r\n", head_problem::bad_status},
      {"HTTP/1.1 abc OK\r\n\r\n", head_problem::bad_status},
      {"HTTP/2.0 200 OK\r\n\r\n", head_problem::unsupported_version},
      {"ICY 200 OK\r\n\r\n", head_problem::bad_start_line},
      {"HTTP/1.1 200 OK\r\nX : y\r\n\r\n", head_problem::bad_field_name},
  };
  for (const auto& [text, problem] : cases) {
    response_head h;
    EXPECT_EQ(parse_response_head(text, 100, h), problem) << text;
  }
}

TEST(field_value, counts_every_field_of_a_name_case_insensitively) {
  const std::vector<header_field> fields{{"Host", "a"}, {"host", "b"}, {"X", "c"}};
  std::size_t count = 0;
  EXPECT_EQ(field_value(fields, "HOST", count), "a");
  EXPECT_EQ(count, 2U);
  EXPECT_EQ(field_value(fields, "y", count), "");
  EXPECT_EQ(count, 0U);
}

}  // namespace
}  // namespace nines::core
