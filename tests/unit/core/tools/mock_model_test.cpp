#include "core/tools/mock_model.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace nines::core {
namespace {

namespace json = boost::json;

mock_plan plan_for(std::string_view body, bool chat, std::size_t tokens = 24) {
  mock_plan plan;
  std::string error;
  EXPECT_TRUE(plan_mock_answer(json::parse(body).as_object(), chat, tokens, plan, error)) << error;
  return plan;
}

TEST(mock_model, no_token_is_a_suffix_of_another_and_all_end_in_space) {
  auto vocab = mock_vocabulary();
  for (auto a : vocab) {
    EXPECT_TRUE(a.ends_with(' '));
    EXPECT_EQ(std::count(a.begin(), a.end(), ' '), 1);
    for (auto b : vocab) {
      if (a != b) {
        EXPECT_FALSE(a.ends_with(b)) << a << " ends with " << b;
      }
    }
  }
}

TEST(mock_model, same_prompt_same_answer_and_different_prompts_differ) {
  auto a = plan_for(R"({"messages":[{"role":"user","content":"hi"}]})", true);
  auto b = plan_for(R"({"messages":[{"role":"user","content":"hi"}],"temperature":0})", true);
  auto c = plan_for(R"({"messages":[{"role":"user","content":"hello"}]})", true);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_NE(a.seed, c.seed);
  EXPECT_EQ(a.first_token, 0U);
  EXPECT_EQ(a.end_token, 24U);
}

TEST(mock_model, chat_continuation_yields_exactly_the_rest) {
  auto full = plan_for(R"({"messages":[{"role":"user","content":"hi"}]})", true);
  const std::string all = mock_answer_text(full.seed, 0, full.end_token);
  const std::string prefix = mock_answer_text(full.seed, 0, 5);
  json::object cont = json::parse(R"({"messages":[{"role":"user","content":"hi"}],
      "continue_final_message":true,"add_generation_prompt":false})").as_object();
  cont["messages"].as_array().push_back(json::object{{"role", "assistant"}, {"content", prefix}});
  mock_plan plan;
  std::string error;
  ASSERT_TRUE(plan_mock_answer(cont, true, 24, plan, error));
  EXPECT_TRUE(plan.continuation);
  EXPECT_EQ(plan.first_token, 5U);
  EXPECT_EQ(prefix + mock_answer_text(plan.seed, plan.first_token, plan.end_token), all);
}

TEST(mock_model, completion_continuation_yields_exactly_the_rest) {
  auto full = plan_for(R"({"prompt":"Say it:"})", false);
  const std::string prefix = mock_answer_text(full.seed, 0, 7);
  json::object cont{{"prompt", "Say it:" + prefix}, {"max_tokens", 100}};
  mock_plan plan;
  std::string error;
  ASSERT_TRUE(plan_mock_answer(cont, false, 24, plan, error));
  EXPECT_EQ(plan.seed, full.seed);
  EXPECT_EQ(plan.first_token, 7U);
  EXPECT_EQ(plan.end_token, 24U);
}

TEST(mock_model, max_tokens_shortens_and_reports_length) {
  auto p = plan_for(R"({"prompt":"x","max_tokens":5})", false);
  EXPECT_EQ(p.end_token, 5U);
  EXPECT_TRUE(p.stopped_by_length);
  auto q = plan_for(R"({"messages":[{"role":"user","content":"x"}],"max_completion_tokens":100})",
                    true);
  EXPECT_EQ(q.end_token, 24U);
  EXPECT_FALSE(q.stopped_by_length);
}

TEST(mock_model, rejects_requests_without_a_prompt) {
  mock_plan plan;
  std::string error;
  EXPECT_FALSE(plan_mock_answer(json::parse(R"({"messages":[]})").as_object(), true, 24, plan, error));
  EXPECT_FALSE(plan_mock_answer(json::parse(R"({"prompt":3})").as_object(), false, 24, plan, error));
  EXPECT_FALSE(error.empty());
}

}  // namespace
}  // namespace nines::core
