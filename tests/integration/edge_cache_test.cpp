// The answer cache ([cache], issue 14): an edge in front of a gateway in front of mock-llm keeps
// answers to identical requests at temperature 0 and sends them again — a whole answer as the same
// JSON, a stream as a valid stream of the same events — without the model; anything that can
// change an answer misses (a key-coverage fuzz); what may not be kept is bypassed; identical
// requests in flight share one generation, even when the first client left; a hit is admitted
// against its client key's limits like any request.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <fstream>
#include <set>

#include "core/access/secret_digest.hpp"
#include "core/random.hpp"
#include "harness.hpp"

namespace nines::test {
namespace {

namespace json = boost::json;

const std::string cache_toml = "[cache]\nmax_bytes = 67108864\n";

std::string uplink_to(const server& gw) {
  return "[[uplinks]]\nname = \"gw\"\nurl = \"" + gw.url() + "\"\n";
}

std::string header_of(const response& r, const std::string& name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

const std::map<std::string, std::string> json_type{{"Content-Type", "application/json"}};

class edge_cache : public ::testing::Test {
 protected:
  void SetUp() override {
    mock_ = start_mock();
    gw_ = start_gateway(upstreams_toml({mock_.url()}));
    edge_ = start_edge(cache_toml + uplink_to(gw_));
  }
  // Answers mock-llm generated (whole or streamed) so far.
  std::uint64_t generated() { return mock_stat(mock_.port, "completed"); }
  std::uint64_t cache_count(const std::string& result) {
    return metric_value(edge_.admin_port, "nines_cache_requests_total{result=\"" + result + "\"}");
  }

  server mock_;
  server gw_;
  server edge_;
};

TEST_F(edge_cache, a_repeated_whole_answer_is_the_same_json_without_the_model) {
  const auto body = chat_body("open the settings app", false);
  const auto first = http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type);
  ASSERT_EQ(first.status, 200u) << first.body;
  EXPECT_EQ(header_of(first, "x-nines-cache"), "miss");
  EXPECT_EQ(answer_text(first.body), expected_answer(body, true));
  ASSERT_TRUE(eventually([&] { return generated() == 1; }));

  const auto second = http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type);
  ASSERT_EQ(second.status, 200u) << second.body;
  EXPECT_EQ(header_of(second, "x-nines-cache"), "hit");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(header_of(second, "content-type"), header_of(first, "content-type"));
  EXPECT_FALSE(header_of(second, "age").empty());
  EXPECT_NE(header_of(second, "x-request-id"), header_of(first, "x-request-id"));
  EXPECT_EQ(generated(), 1u);  // the model was not asked again
  // Counted when each request's exchange ends, just after its answer went out.
  EXPECT_TRUE(eventually([&] { return cache_count("miss") == 1 && cache_count("hit") == 1; }));

  const auto status = json::parse(http_call(edge_.admin_port, "GET", "/status").body).as_object();
  const auto& cache = status.at("cache").as_object();
  EXPECT_EQ(cache.at("entries").as_int64(), 1);
  EXPECT_GT(cache.at("bytes").as_int64(), static_cast<std::int64_t>(first.body.size()));
  EXPECT_EQ(cache.at("requests").at("hit").to_number<double>(), 1.0);
}

TEST_F(edge_cache, a_repeated_stream_is_replayed_as_a_valid_stream_of_the_same_events) {
  const auto body = chat_body("scroll down", true);
  const auto first = http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type);
  ASSERT_EQ(first.status, 200u);
  EXPECT_EQ(header_of(first, "x-nines-cache"), "miss");
  const auto sent = sse_events(first.body);
  ASSERT_TRUE(eventually([&] { return generated() == 1; }));

  const auto again = http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type);
  ASSERT_EQ(again.status, 200u);
  ASSERT_TRUE(again.complete);
  EXPECT_EQ(header_of(again, "x-nines-cache"), "hit");
  EXPECT_EQ(header_of(again, "content-type"), "text/event-stream");
  const auto replayed = sse_events(again.body);
  ASSERT_EQ(replayed.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(replayed[i].data, sent[i].data) << "event " << i;
    EXPECT_EQ(replayed[i].type, sent[i].type) << "event " << i;
    // The ids named the first request's stream (its journal entry), not this one.
    EXPECT_TRUE(sent[i].id.has_value());
    EXPECT_FALSE(replayed[i].id.has_value());
  }
  EXPECT_EQ(replayed.back().data, "[DONE]");
  EXPECT_EQ(stream_text(replayed), expected_answer(body, true));
  EXPECT_EQ(generated(), 1u);

  // The same words asked without streaming are another request: not answered with a stream.
  const auto whole = http_call(edge_.port, "POST", "/v1/chat/completions",
                               chat_body("scroll down", false), json_type);
  EXPECT_EQ(header_of(whole, "x-nines-cache"), "miss");
  EXPECT_EQ(answer_text(whole.body), expected_answer(body, true));
}

TEST_F(edge_cache, what_may_not_be_kept_is_bypassed_and_cache_control_is_honoured) {
  // Sampled answers are not kept: another temperature, or none (a server's default samples).
  for (const auto& extra : {std::string(R"("top_p":1)"), std::string()}) {
    json::object o = json::parse(chat_body("tap home", false, extra)).as_object();
    o["temperature"] = 0.7;
    for (const auto& text : {json::serialize(o), [&] {
                               o.erase("temperature");
                               return json::serialize(o);
                             }()}) {
      const auto before = generated();
      for (int i = 0; i < 2; ++i) {
        const auto r = http_call(edge_.port, "POST", "/v1/chat/completions", text, json_type);
        ASSERT_EQ(r.status, 200u);
        EXPECT_EQ(header_of(r, "x-nines-cache"), "bypass") << text;
      }
      EXPECT_TRUE(eventually([&] { return generated() == before + 2; }));
    }
  }
  // no-store: neither answered from the cache nor kept.
  const auto body = chat_body("go back", false);
  auto no_store = json_type;
  no_store["Cache-Control"] = "no-store";
  EXPECT_EQ(header_of(http_call(edge_.port, "POST", "/v1/chat/completions", body, no_store),
                      "x-nines-cache"),
            "bypass");
  EXPECT_EQ(header_of(http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type),
                      "x-nines-cache"),
            "miss");
  EXPECT_EQ(header_of(http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type),
                      "x-nines-cache"),
            "hit");
  // no-cache: generated afresh (and the fresh answer kept), never answered from the cache.
  auto no_cache = json_type;
  no_cache["Cache-Control"] = "no-cache";
  const auto stored = [&] {
    return json::parse(http_call(edge_.admin_port, "GET", "/status").body)
        .at("cache")
        .at("stored")
        .to_number<double>();
  };
  const auto stored_before = stored();
  const auto before = generated();
  const auto fresh = http_call(edge_.port, "POST", "/v1/chat/completions", body, no_cache);
  EXPECT_EQ(header_of(fresh, "x-nines-cache"), "bypass");
  EXPECT_EQ(answer_text(fresh.body), expected_answer(body, true));
  EXPECT_TRUE(eventually([&] { return generated() == before + 1; }));
  EXPECT_EQ(stored(), stored_before + 1);
  auto pragma = json_type;
  pragma["Pragma"] = "no-cache";
  EXPECT_EQ(header_of(http_call(edge_.port, "POST", "/v1/chat/completions", body, pragma),
                      "x-nines-cache"),
            "bypass");
  // Routes whose answers are not kept say so too.
  const auto emb = http_call(edge_.port, "POST", "/v1/embeddings",
                             R"({"model":"m","input":"x","temperature":0})", json_type);
  EXPECT_EQ(emb.status, 200u);
  EXPECT_EQ(header_of(emb, "x-nines-cache"), "bypass");
  // A client's own x-nines-cache is not an answer's.
  auto lying = json_type;
  lying["x-nines-cache"] = "hit";
  EXPECT_EQ(header_of(http_call(edge_.port, "POST", "/v1/chat/completions",
                                chat_body("brand new", false), lying),
                      "x-nines-cache"),
            "miss");
}

TEST_F(edge_cache, max_age_and_only_if_cached_are_honoured) {
  const auto body = chat_body("open the gallery", false);
  auto only = json_type;
  only["Cache-Control"] = "only-if-cached";
  // Nothing kept yet: a 504, and the model is not asked.
  const auto none = http_call(edge_.port, "POST", "/v1/chat/completions", body, only);
  EXPECT_EQ(none.status, 504u) << none.body;
  EXPECT_NE(none.body.find("not_cached"), std::string::npos);
  EXPECT_EQ(generated(), 0u);
  ASSERT_EQ(http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type).status, 200u);
  const auto kept = http_call(edge_.port, "POST", "/v1/chat/completions", body, only);
  EXPECT_EQ(kept.status, 200u);
  EXPECT_EQ(header_of(kept, "x-nines-cache"), "hit");
  // Young enough for max-age=3600: a hit. (max-age=0 is no-cache, above.)
  auto young = json_type;
  young["Cache-Control"] = "max-age=3600";
  EXPECT_EQ(header_of(http_call(edge_.port, "POST", "/v1/chat/completions", body, young),
                      "x-nines-cache"),
            "hit");
  EXPECT_EQ(generated(), 1u);
}

TEST_F(edge_cache, a_failed_answer_is_not_kept) {
  const auto body = chat_body("open the camera", false);
  auto failing = json_type;
  failing["x-mock-fault"] = "error_rate=1";
  const auto failed = http_call(edge_.port, "POST", "/v1/chat/completions", body, failing);
  EXPECT_GE(failed.status, 500u) << failed.body;
  EXPECT_EQ(header_of(failed, "x-nines-cache"), "miss");
  // The same request (the same header too) is not answered with that failure: it is tried again.
  const auto requests_before = mock_stat(mock_.port, "errors_503");
  const auto again = http_call(edge_.port, "POST", "/v1/chat/completions", body, failing);
  EXPECT_GE(again.status, 500u);
  EXPECT_EQ(header_of(again, "x-nines-cache"), "miss");
  EXPECT_GT(mock_stat(mock_.port, "errors_503"), requests_before);
}

// Zero wrong hits: random requests made by changing any answer-affecting field (or header) of an
// Open-AutoGLM step, some repeated (tools are in the unit fuzz, core/cache: mock-llm answers a
// request with tools by calling one). A new request must be a miss whose answer is its own
// (mock-llm says which body it answered: x-mock-body-sha256); a repeat must be a hit with the first
// answer.
TEST_F(edge_cache, key_coverage_fuzz_no_request_gets_another_ones_answer) {
  const json::object base = json::parse(R"({
    "model": "mock-model", "temperature": 0, "max_tokens": 20, "seed": 3, "top_p": 1,
    "stop": ["</answer>"], "response_format": {"type": "text"},
    "messages": [{"role": "system", "content": "You drive a phone."},
                 {"role": "user", "content": "step 1: data:image/png;base64,AAAA"}]
  })")
                                .as_object();
  core::splitmix_rng random(14);
  const auto mutate = [&](json::object o, std::string& beta) {
    switch (random.below(12)) {
      case 0:
        o["model"] = "mock-model-" + std::to_string(random.below(3));
        break;
      case 1:
        o["max_tokens"] = 10 + random.below(4);
        break;
      case 2:
        o["seed"] = random.below(4);
        break;
      case 3:
        o["top_p"] = 0.5 + 0.1 * static_cast<double>(random.below(3));
        break;
      case 4:
        o["stop"] = json::array{"</" + std::to_string(random.below(3)) + ">"};
        break;
      case 5:
        o["response_format"] = json::object{{"type", random.below(2) ? "json_object" : "text"}};
        break;
      case 6:
        o["presence_penalty"] = static_cast<double>(random.below(3)) / 10;
        break;
      case 7:
        o["messages"].as_array()[1].as_object()["content"] =
            "step " + std::to_string(random.below(4)) + ": data:image/png;base64,AAAA";
        break;
      case 8:
        o["messages"].as_array()[0].as_object()["content"] =
            "You drive phone " + std::to_string(random.below(3));
        break;
      case 9:
        o["frequency_penalty"] = static_cast<double>(random.below(3)) / 10;
        break;
      case 10:
        o["stream"] = random.below(2) == 1;
        break;
      default:
        beta = "v" + std::to_string(random.below(3));
        break;  // a header upstream reads
    }
    return o;
  };
  struct seen {
    std::string body;  // the first answer, as the client got it
    std::string digest;
  };
  std::map<std::pair<std::string, std::string>, seen> answers;  // by (request, header)
  unsigned misses = 0;
  unsigned hits = 0;
  for (int round = 0; round < 60; ++round) {
    std::string beta = "v0";
    auto o = base;
    for (std::uint64_t k = 1 + random.below(2); k > 0; --k) {
      o = mutate(o, beta);
    }
    const auto body = json::serialize(o);
    auto headers = json_type;
    headers["x-mock-digest"] = "sha256";
    headers["OpenAI-Beta"] = beta;
    const auto r = http_call(edge_.port, "POST", "/v1/chat/completions", body, headers);
    ASSERT_EQ(r.status, 200u) << body << r.body;
    const auto key = std::make_pair(body, beta);
    const auto verdict = header_of(r, "x-nines-cache");
    if (const auto it = answers.find(key); it != answers.end()) {
      ++hits;
      EXPECT_EQ(verdict, "hit") << body;
      // The same answer: the same JSON, or the same events (a replay's carry no ids).
      const auto datas = [](const std::string& text) {
        std::vector<std::string> out;
        for (const auto& e : sse_events(text)) {
          out.push_back(e.data);
        }
        return out;
      };
      if (r.body.starts_with("data:")) {
        EXPECT_EQ(datas(r.body), datas(it->second.body));
      } else {
        EXPECT_EQ(r.body, it->second.body);
      }
      EXPECT_EQ(header_of(r, "x-mock-body-sha256"), it->second.digest);
      continue;
    }
    ++misses;
    EXPECT_EQ(verdict, "miss") << "round " << round << ": " << body << " beta " << beta;
    const auto digest = core::format_secret_digest(core::sha256_of(body));
    EXPECT_EQ(header_of(r, "x-mock-body-sha256"), digest) << "answered for another body";
    const auto* st = o.if_contains("stream");
    const bool stream = st != nullptr && st->is_bool() && st->as_bool();
    const auto text = stream ? stream_text(sse_events(r.body)) : answer_text(r.body);
    EXPECT_EQ(text, expected_answer(body, true)) << body;
    answers.emplace(key, seen{r.body, digest});
  }
  EXPECT_GT(misses, 20u);
  EXPECT_GT(hits, 5u);  // repeats happened, and hit
}

// An SDK that timed out and retried: its first request's generation serves the retry, even
// though the first connection is gone; the model generates once.
TEST_F(edge_cache, identical_requests_in_flight_share_one_generation_after_the_first_left) {
  const auto body = chat_body("what is on the screen?", true);
  auto slow = json_type;
  slow["x-mock-fault"] = "tpot_ms=40";  // about a second for the whole answer
  std::vector<core::sse_event> second_events;
  std::string verdict;
  std::string first_id;
  std::string retry_id;
  {
    stream_reader first(edge_.port, "/v1/chat/completions", body, true, slow);
    ASSERT_TRUE(first.read_events(3));
    EXPECT_EQ(first.header("x-nines-cache"), "miss");
    first_id = first.header("x-request-id");
  }  // the first client leaves mid-stream
  {
    stream_reader retry(edge_.port, "/v1/chat/completions", body, true, slow);
    ASSERT_TRUE(retry.read_events(1));
    verdict = retry.header("x-nines-cache");
    retry_id = retry.header("x-request-id");
    retry.read_events(1000);
    ASSERT_TRUE(retry.ended());
    second_events = retry.events();
  }
  EXPECT_EQ(verdict, "hit");
  EXPECT_EQ(stream_text(second_events), expected_answer(body, true));
  EXPECT_EQ(retry_id.size() > 0, true);
  EXPECT_NE(retry_id, first_id);  // its own request id, not the one it shared with
  EXPECT_EQ(second_events.back().data, "[DONE]");
  EXPECT_TRUE(eventually([&] { return cache_count("shared") == 1; }));
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 1u);  // one generation for both
  EXPECT_EQ(mock_stat(mock_.port, "aborted"), 0u);  // not cancelled when the first left
  // Two at the same time, once it is kept: both hits.
  const auto third = http_call(edge_.port, "POST", "/v1/chat/completions", body, slow);
  EXPECT_EQ(header_of(third, "x-nines-cache"), "hit");
  EXPECT_EQ(stream_text(sse_events(third.body)), expected_answer(body, true));
  EXPECT_EQ(mock_stat(mock_.port, "streams"), 1u);
}

TEST_F(edge_cache, a_four_megabyte_screenshot_request_hits) {
  const auto body = chat_body(
      "what is on the screen? data:image/png;base64," + std::string(4u << 20, 'Q'), false);
  const auto first = http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type);
  ASSERT_EQ(first.status, 200u);
  EXPECT_EQ(header_of(first, "x-nines-cache"), "miss");
  auto changed = body;
  changed[changed.size() - 100] = 'R';  // one byte of the image, deep in the body
  const auto other = http_call(edge_.port, "POST", "/v1/chat/completions", changed, json_type);
  EXPECT_EQ(header_of(other, "x-nines-cache"), "miss");
  const auto again = http_call(edge_.port, "POST", "/v1/chat/completions", body, json_type);
  EXPECT_EQ(header_of(again, "x-nines-cache"), "hit");
  EXPECT_EQ(again.body, first.body);
}

// On a gateway with client keys: who asks is part of the key, and a hit counts against its key's
// limits like any request (it uses no tokens).
TEST(gateway_cache, the_key_holds_who_asks_and_a_hit_is_admitted_like_any_request) {
  auto mock = start_mock();
  const auto keys = temp_path(".toml");
  {
    std::ofstream f(keys);
    for (const auto& [id, secret, rpm] :
         {std::tuple{"a", "secret-cache-a-0123", 3}, std::tuple{"b", "secret-cache-b-0123", 0}}) {
      f << "[[keys]]\nid = \"" << id << "\"\nhash = \""
        << core::format_secret_digest(core::sha256_of(secret)) << "\"\nmodels = [\"*\"]\n"
        << "requests_per_minute = " << rpm << "\n";
    }
  }
  auto gw = start_gateway("[auth]\nkeys_file = \"" + keys + "\"\n" + cache_toml +
                          upstreams_toml({mock.url()}));
  const auto as = [&](const std::string& secret) {
    auto h = json_type;
    h["Authorization"] = "Bearer " + secret;
    return h;
  };
  const auto body = chat_body("open the clock", false);
  const auto call = [&](const std::string& secret) {
    return http_call(gw.port, "POST", "/v1/chat/completions", body, as(secret));
  };
  EXPECT_EQ(header_of(call("secret-cache-a-0123"), "x-nines-cache"), "miss");
  EXPECT_EQ(header_of(call("secret-cache-a-0123"), "x-nines-cache"), "hit");
  const auto other_key = call("secret-cache-b-0123");
  EXPECT_EQ(header_of(other_key, "x-nines-cache"), "miss");  // another client's answer: not shared
  EXPECT_EQ(answer_text(other_key.body), expected_answer(body, true));
  // Key a's third request in the minute is its last; the fourth is refused, kept answer or not.
  EXPECT_EQ(header_of(call("secret-cache-a-0123"), "x-nines-cache"), "hit");
  const auto refused = call("secret-cache-a-0123");
  EXPECT_EQ(refused.status, 429u) << refused.body;
  EXPECT_NE(refused.body.find("rate_limit_exceeded"), std::string::npos);
  EXPECT_EQ(header_of(refused, "x-nines-cache"), "bypass");
  // No key, no answer: the cache answers nobody the gateway would not.
  const auto anonymous = http_call(gw.port, "POST", "/v1/chat/completions", body, json_type);
  EXPECT_EQ(anonymous.status, 401u);
  EXPECT_EQ(header_of(anonymous, "x-nines-cache"), "bypass");
}

// A generation that outlives its client is a key's right (allow_journal): without it, a kept
// answer's generation is tied to its client, whose leaving cancels it; nothing is kept then.
TEST(gateway_cache, without_journal_rights_a_leaving_client_cancels_the_generation) {
  auto mock = start_mock();
  const auto keys = temp_path(".toml");
  const std::string secret = "secret-cache-c-0123";
  std::ofstream(keys) << "[[keys]]\nid = \"c\"\nhash = \""
                      << core::format_secret_digest(core::sha256_of(secret))
                      << "\"\nmodels = [\"*\"]\n";
  auto gw = start_gateway("[auth]\nkeys_file = \"" + keys + "\"\n" + cache_toml +
                          upstreams_toml({mock.url()}));
  auto headers = json_type;
  headers["Authorization"] = "Bearer " + secret;
  headers["x-mock-fault"] = "tpot_ms=40";
  const auto body = chat_body("read the notification", true);
  {
    stream_reader first(gw.port, "/v1/chat/completions", body, true, headers);
    ASSERT_TRUE(first.read_events(3));
    EXPECT_EQ(first.header("x-nines-cache"), "miss");
  }
  ASSERT_TRUE(eventually([&] { return mock_stat(mock.port, "aborted") == 1; }));
  const auto again = http_call(gw.port, "POST", "/v1/chat/completions", body, headers);
  EXPECT_EQ(header_of(again, "x-nines-cache"), "miss");  // nothing was kept
  EXPECT_EQ(stream_text(sse_events(again.body)), expected_answer(body, true));
  EXPECT_EQ(
      header_of(http_call(gw.port, "POST", "/v1/chat/completions", body, headers), "x-nines-cache"),
      "hit");
}

}  // namespace
}  // namespace nines::test
