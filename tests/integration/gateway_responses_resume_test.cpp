// The Responses API, unbroken: a /v1/responses stream that breaks anywhere — in the thought, in
// the answer, between items — is continued on another upstream through chat completions, and the
// client sees one response: one response.created, the original response id, sequence numbers
// from 0 with no gap, each item opened once and closed once at a consistent output_index, every
// thought and answer token exactly once, and one response.completed whose output and usage add up.

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <map>

#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

constexpr std::size_t thought_tokens = 6;
constexpr std::size_t answer_tokens = 24;

std::string responses_body(const std::string& input, const std::string& extra = {}) {
  std::string s = json::serialize(json::object{{"model", "m"},
                                               {"instructions", "You drive a phone."},
                                               {"input", input},
                                               {"stream", true}});
  if (!extra.empty()) {
    s.pop_back();
    s += "," + extra + "}";
  }
  return s;
}

// Checks the invariants of one Responses stream and returns its thought and answer.
struct checked_response {
  std::string thought;
  std::string answer;
  std::string final_type;
  json::object final;
};

checked_response check_one_response(const std::string& body, const std::string& what) {
  checked_response out;
  std::int64_t expected_sequence = 0;
  int created = 0;
  std::string response_id;
  std::map<std::int64_t, std::string> added;  // output_index -> item id
  std::map<std::int64_t, int> done;
  std::map<std::string, std::string> text_by_item;
  for (const auto& e : sse_events(body)) {
    auto o = json::parse(e.data).as_object();
    const std::string type(o.at("type").as_string());
    EXPECT_EQ(e.type, type) << what;
    EXPECT_EQ(o.at("sequence_number").to_number<std::int64_t>(), expected_sequence++)
        << what << ": " << type;
    if (type == "response.created") {
      ++created;
      response_id = std::string(o.at("response").as_object().at("id").as_string());
    } else if (type == "response.output_item.added") {
      const auto index = o.at("output_index").to_number<std::int64_t>();
      EXPECT_EQ(static_cast<std::size_t>(index), added.size()) << what << ": items in order";
      EXPECT_FALSE(added.contains(index)) << what;
      added[index] = std::string(o.at("item").as_object().at("id").as_string());
    } else if (type == "response.output_item.done") {
      const auto index = o.at("output_index").to_number<std::int64_t>();
      ++done[index];
      EXPECT_EQ(o.at("item").as_object().at("id").as_string(), added[index]) << what;
    } else if (type == "response.reasoning_text.delta" || type == "response.output_text.delta") {
      const auto index = o.at("output_index").to_number<std::int64_t>();
      EXPECT_EQ(o.at("item_id").as_string(), added[index]) << what << ": delta of its item";
      EXPECT_FALSE(done.contains(index)) << what << ": no delta after its item is done";
      const std::string delta(o.at("delta").as_string());
      text_by_item[added[index]] += delta;
      (type == "response.reasoning_text.delta" ? out.thought : out.answer) += delta;
    } else if (type == "response.completed" || type == "response.incomplete") {
      out.final_type = type;
      out.final = o.at("response").as_object();
    }
  }
  EXPECT_EQ(created, 1) << what;
  EXPECT_EQ(out.final_type, "response.completed") << what;
  if (out.final_type.empty()) {
    return out;
  }
  EXPECT_EQ(out.final.at("id").as_string(), response_id) << what;
  for (const auto& [index, id] : added) {
    EXPECT_EQ(done[index], 1) << what << ": item " << id << " closed once";
  }
  // The final output holds every item with the text that was streamed for it.
  const auto& output = out.final.at("output").as_array();
  EXPECT_EQ(output.size(), added.size()) << what;
  for (std::size_t i = 0; i < output.size(); ++i) {
    const auto& item = output[i].as_object();
    EXPECT_EQ(item.at("id").as_string(), added[static_cast<std::int64_t>(i)]) << what;
    if (item.at("type").as_string() == "function_call") {
      continue;  // its arguments are checked where calls are
    }
    const auto& content = item.at("content").as_array();
    EXPECT_EQ(content.size(), 1U) << what;
    if (content.size() != 1U) {
      continue;
    }
    EXPECT_EQ(content[0].as_object().at("text").as_string(),
              text_by_item[std::string(item.at("id").as_string())])
        << what;
  }
  return out;
}

class gateway_responses_resume : public ::testing::Test {
 protected:
  void start(const std::string& upstream_extra = {}) {
    const std::string thought = std::to_string(thought_tokens);
    breaking_ = start_mock({"--thought-tokens", thought});
    healthy_ = start_mock({"--thought-tokens", thought});
    gw_ = start_gateway(breaks_then_continues_toml(breaking_.url(), healthy_.url(), upstream_extra),
                        {"--access-log", "stdout"});
  }
  void set_fault(const std::string& kind, std::size_t k) {
    const std::string faults = "{\"" + kind + "\":" + std::to_string(k) + "}";
    ASSERT_EQ(http_call(breaking_.port, "POST", "/mock/faults", faults).status, 200U);
  }
  server breaking_, healthy_, gw_;
};

TEST_F(gateway_responses_resume, every_break_position_and_kind_gives_one_exact_response) {
  start();
  for (const std::string kind : {"die_after", "cut_after", "malformed_after"}) {
    for (std::size_t k = 0; k < thought_tokens + answer_tokens; ++k) {
      set_fault(kind, k);
      const auto body = responses_body("position " + std::to_string(k));
      auto r = http_call(gw_.port, "POST", "/v1/responses", body);
      ASSERT_EQ(r.status, 200U);
      const std::string what = kind + "=" + std::to_string(k);
      const auto got = check_one_response(r.body, what);
      const auto want = expected_output(body, core::mock_api::responses, thought_tokens);
      EXPECT_EQ(got.thought, want.thought) << what;
      EXPECT_EQ(got.answer, want.answer) << what;
      if (!got.final.empty() && got.final.at("usage").is_object()) {
        const auto& usage = got.final.at("usage").as_object();
        EXPECT_EQ(usage.at("output_tokens").to_number<std::size_t>(), thought_tokens + answer_tokens)
            << what;
        EXPECT_EQ(usage.at("output_tokens_details").as_object().at("reasoning_tokens")
                      .to_number<std::size_t>(),
                  thought_tokens)
            << what;
      } else {
        ADD_FAILURE() << what << ": usage missing";
      }
    }
  }
  // Every case but a break before the first event (a plain retry) was continued through chat.
  EXPECT_EQ(mock_stat(healthy_.port, "continuations"), 3U * (thought_tokens + answer_tokens));
}

TEST_F(gateway_responses_resume, a_stall_is_continued_after_the_idle_timeout) {
  start();
  for (std::size_t k : {2U, 6U, 17U}) {
    set_fault("stall_after", k);
    const auto body = responses_body("stall " + std::to_string(k));
    auto r = http_call(gw_.port, "POST", "/v1/responses", body);
    const auto got = check_one_response(r.body, "stall " + std::to_string(k));
    const auto want = expected_output(body, core::mock_api::responses, thought_tokens);
    EXPECT_EQ(got.thought, want.thought) << k;
    EXPECT_EQ(got.answer, want.answer) << k;
  }
}

TEST_F(gateway_responses_resume, max_output_tokens_counts_across_the_break) {
  start();
  set_fault("die_after", 4);
  // Ten tokens in all: six of thought, four of answer; the answer is cut by length.
  const auto body = responses_body("budget", R"("max_output_tokens":10)");
  auto r = http_call(gw_.port, "POST", "/v1/responses", body);
  const auto events = sse_events(r.body);
  ASSERT_FALSE(events.empty());
  auto last = json::parse(events.back().data).as_object();
  EXPECT_EQ(last.at("type").as_string(), "response.incomplete");
  const auto want = expected_output(body, core::mock_api::responses, thought_tokens);
  std::string answer;
  for (const auto& e : events) {
    auto o = json::parse(e.data).as_object();
    if (o.at("type").as_string() == "response.output_text.delta") {
      answer += o.at("delta").as_string();
    }
  }
  EXPECT_EQ(answer, want.answer);
  EXPECT_EQ(last.at("response").as_object().at("incomplete_details").as_object().at("reason")
                .as_string(),
            "max_output_tokens");
}

// A request a chat continuation cannot repeat exactly (server-side state) is never guessed at:
// a break ends with the explicit error event.
TEST_F(gateway_responses_resume, a_request_with_server_side_state_is_not_continued) {
  start();
  set_fault("die_after", 8);
  const auto body = responses_body("stateful", R"("previous_response_id":"resp_earlier")");
  auto r = http_call(gw_.port, "POST", "/v1/responses", body);
  const auto events = sse_events(r.body);
  ASSERT_FALSE(events.empty());
  auto last = json::parse(events.back().data).as_object();
  EXPECT_EQ(last.at("type").as_string(), "error");
  EXPECT_NE(std::string(last.at("message").as_string()).find("previous_response_id"),
            std::string::npos)
      << events.back().data;
  EXPECT_EQ(mock_stat(healthy_.port, "continuations"), 0U);
}

TEST_F(gateway_responses_resume, responses_resume_none_ends_with_the_explicit_signal) {
  start("responses_resume = \"none\"\n");
  set_fault("die_after", 8);
  auto r = http_call(gw_.port, "POST", "/v1/responses", responses_body("no"));
  const auto events = sse_events(r.body);
  ASSERT_FALSE(events.empty());
  auto last = json::parse(events.back().data).as_object();
  EXPECT_EQ(last.at("type").as_string(), "error");
  EXPECT_NE(std::string(last.at("message").as_string()).find("responses_resume"), std::string::npos);
  EXPECT_EQ(mock_stat(healthy_.port, "continuations"), 0U);
}

// A function call reaches the client whole or not at all: its events are held until the item is
// done, so a break before that (in the thought, the message or inside the call) is continued, and
// the client gets the message and one complete call — made again by the continuation when it was
// cut.
TEST_F(gateway_responses_resume, function_calls_are_never_half_delivered) {
  start();
  const std::string tools =
      R"("tools":[{"type":"function","name":"tap","parameters":{"type":"object"}}])";
  const auto split = core::plan_mock_tool_call(0, answer_tokens).split;
  // The thought, the message's tokens up to the call, then the call's argument pieces.
  const std::size_t emissions = thought_tokens + split + core::mock_tool_call::pieces;
  for (std::size_t k = 0; k < emissions; ++k) {
    set_fault("die_after", k);
    const auto body = responses_body("tool " + std::to_string(k), tools);
    auto r = http_call(gw_.port, "POST", "/v1/responses", body);
    const std::string what = "die_after=" + std::to_string(k);
    std::vector<std::string> argument_deltas;
    int calls_added = 0;
    for (const auto& e : sse_events(r.body)) {
      auto o = json::parse(e.data).as_object();
      if (o.at("type").as_string() == "response.function_call_arguments.delta") {
        argument_deltas.emplace_back(o.at("delta").as_string());
      }
      if (o.at("type").as_string() == "response.output_item.added" &&
          o.at("item").as_object().at("type").as_string() == "function_call") {
        ++calls_added;
      }
    }
    const auto got = check_one_response(r.body, what);
    EXPECT_EQ(calls_added, 1) << what;
    ASSERT_FALSE(got.final.empty()) << what;
    const auto& output = got.final.at("output").as_array();
    ASSERT_FALSE(output.empty()) << what;
    const auto& call = output.back().as_object();
    EXPECT_EQ(call.at("type").as_string(), "function_call") << what;
    EXPECT_EQ(call.at("name").as_string(), "tap") << what;
    // The arguments the uninterrupted answer has, whole, streamed once.
    core::mock_plan plan;
    std::string error;
    ASSERT_TRUE(core::plan_mock_answer(json::parse(body).as_object(), core::mock_api::responses,
                                       answer_tokens, thought_tokens, plan, error));
    const auto whole = core::plan_mock_tool_call(plan.seed, answer_tokens).arguments;
    EXPECT_EQ(call.at("arguments").as_string(), whole) << what;
    std::string streamed;
    for (const auto& d : argument_deltas) {
      streamed += d;
    }
    EXPECT_EQ(streamed, whole) << what;
    EXPECT_EQ(call.at("call_id").as_string(), core::mock_call_id(plan.seed)) << what;
    const auto want = expected_output(body, core::mock_api::responses, thought_tokens);
    EXPECT_EQ(got.thought, want.thought) << what;
    // The message holds the answer's tokens up to the call.
    EXPECT_EQ(got.answer, core::mock_answer_text(plan.seed, 0, split)) << what;
  }
}

// The journal holds for Responses streams too: a client that dropped comes back with
// Last-Event-ID and gets exactly the rest of the one response, while a break upstream was
// continued meanwhile.
TEST(gateway_responses_journal, a_dropped_client_gets_the_rest_with_last_event_id) {
  auto breaking = start_mock({"--thought-tokens", std::to_string(thought_tokens), "--faults",
                              "tpot_ms=20,die_after=9"});
  auto healthy = start_mock({"--thought-tokens", std::to_string(thought_tokens), "--faults",
                             "tpot_ms=20"});
  auto gw = start_gateway("[journal]\nmode = \"keyed\"\n" +
                          breaks_then_continues_toml(breaking.url(), healthy.url()));
  const auto body = responses_body("journaled");
  std::vector<core::sse_event> first;
  {
    stream_reader reader(gw.port, "/v1/responses", body, true, {{"X-Request-Id", "agent-1-step-9"}});
    ASSERT_TRUE(reader.read_events(7));
    first = reader.events();
  }  // the client's connection drops here
  auto rest = http_call(gw.port, "POST", "/v1/responses", body,
                        {{"X-Request-Id", "agent-1-step-9"}, {"Last-Event-ID", *first.back().id}});
  ASSERT_EQ(rest.status, 200U);
  std::string whole;
  for (const auto& e : first) {
    core::append_sse_event(whole, e);
  }
  whole += rest.body;
  const auto got = check_one_response(whole, "journaled");
  const auto want = expected_output(body, core::mock_api::responses, thought_tokens);
  EXPECT_EQ(got.thought, want.thought);
  EXPECT_EQ(got.answer, want.answer);
  EXPECT_EQ(mock_stat(healthy.port, "continuations"), 1U);
}

}  // namespace
}  // namespace nines::test
