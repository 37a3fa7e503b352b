#include "core/tools/chaos_toxic.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>

namespace nines::core {
namespace {

namespace json = boost::json;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

toxic make(std::string_view text) {
  toxic t;
  const auto error = toxic_from_text(text, t);
  EXPECT_EQ(error, "") << text;
  return t;
}

chunk_plan plan(std::initializer_list<const toxic*> active, std::size_t size,
                direction_progress& progress, std::uint64_t seed = 1) {
  splitmix_rng random(seed);
  std::vector<const toxic*> list(active);
  return plan_chunk(list, size, progress, random);
}

TEST(chaos_toxic, json_form_is_toxiproxys) {
  toxic t;
  ASSERT_EQ(toxic_from_json(json::parse(R"({"type":"latency","stream":"upstream","toxicity":0.5,
                                            "attributes":{"latency":100,"jitter":20}})"),
                            t),
            "");
  EXPECT_EQ(t.name, "latency_upstream");
  EXPECT_EQ(t.stream, toxic_stream::upstream);
  EXPECT_EQ(t.latency, 100);
  EXPECT_EQ(t.jitter, 20);
  EXPECT_DOUBLE_EQ(t.toxicity, 0.5);
  const auto back = toxic_to_json(t);
  EXPECT_EQ(back.at("type").as_string(), "latency");
  EXPECT_EQ(back.at("attributes").as_object().at("latency").as_int64(), 100);
  // An update names only what changes.
  toxic updated;
  ASSERT_EQ(toxic_from_json(json::parse(R"({"attributes":{"latency":300}})"), updated, &t), "");
  EXPECT_EQ(updated.latency, 300);
  EXPECT_EQ(updated.jitter, 20);
  EXPECT_EQ(updated.name, "latency_upstream");
}

TEST(chaos_toxic, bad_toxics_say_what_is_wrong) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"attributes":{}})", "type is required"},
      {R"({"type":"lag"})", "type must be one of"},
      {R"({"type":"latency","stream":"sideways"})", "stream must be"},
      {R"({"type":"latency","toxicity":2})", "toxicity must be between 0 and 1"},
      {R"({"type":"latency","attributes":{"rate":1}})", "latency has no attribute \"rate\""},
      {R"({"type":"latency","attributes":{"latency":-1}})", "latency must not be negative"},
      {R"({"type":"latency","attributes":{"latency":10,"jitter":20}})", "jitter must not exceed"},
      {R"({"type":"latency","attributes":{"latency":3600001}})", "latency must be at most 3600000"},
      {R"({"type":"slicer","attributes":{"average_size":10,"delay":166666666666666600}})",
       "delay must be at most 3600000000"},
      {R"({"type":"bandwidth"})", "rate must be positive"},
      {R"({"type":"slicer","attributes":{"average_size":4,"size_variation":4}})", "slicer needs"},
      {R"({"type":"timeout","name":"a b"})", "name must be"},
      {R"({"type":"timeout","colour":"red"})", "unknown field \"colour\""},
      {R"([1])", "must be a JSON object"},
  };
  for (const auto& [text, why] : cases) {
    toxic t;
    EXPECT_NE(toxic_from_json(json::parse(text), t).find(why), std::string::npos) << text;
  }
  toxic t;
  EXPECT_NE(toxic_from_text("type=latency,latency=abc", t).find("latency must be an integer"),
            std::string::npos);
  EXPECT_NE(toxic_from_text("type=latency,latency", t).find("needs a value"), std::string::npos);
}

TEST(chaos_toxic, text_form_passes_extra_keys_back) {
  toxic t;
  std::vector<std::pair<std::string, std::string>> extras;
  const std::string_view keys[] = {"proxy"};
  ASSERT_EQ(toxic_from_text("proxy=gpu-a,type=reset_peer,timeout=50,toxicity=0.05", t, keys,
                            &extras),
            "");
  EXPECT_EQ(t.type, toxic_type::reset_peer);
  EXPECT_EQ(t.timeout, 50);
  ASSERT_EQ(extras.size(), 1U);
  EXPECT_EQ(extras[0].second, "gpu-a");
}

TEST(chaos_toxic, no_toxic_forwards_the_chunk_whole) {
  direction_progress progress;
  const auto p = plan({}, 1000, progress);
  EXPECT_FALSE(p.drop);
  EXPECT_FALSE(p.close_after);
  EXPECT_EQ(p.latency, nanoseconds(0));
  ASSERT_EQ(p.pieces.size(), 1U);
  EXPECT_EQ(p.pieces[0].length, 1000U);
  EXPECT_EQ(progress.forwarded, 1000U);
}

TEST(chaos_toxic, latency_with_jitter_stays_in_its_band_and_uses_it) {
  const auto t = make("type=latency,latency=100,jitter=10");
  nanoseconds lowest = milliseconds(1000), highest{0};
  direction_progress progress;
  splitmix_rng random(3);
  for (int i = 0; i < 1000; ++i) {
    const toxic* list[] = {&t};
    const auto p = plan_chunk(list, 10, progress, random);
    ASSERT_GE(p.latency, milliseconds(90));
    ASSERT_LE(p.latency, milliseconds(110));
    lowest = std::min(lowest, p.latency);
    highest = std::max(highest, p.latency);
  }
  EXPECT_EQ(lowest, milliseconds(90));
  EXPECT_EQ(highest, milliseconds(110));
}

TEST(chaos_toxic, bandwidth_paces_bytes_at_the_rate) {
  const auto t = make("type=bandwidth,rate=100");  // 100 KB/s: 1,000 bytes take 10 ms
  direction_progress progress;
  const auto p = plan({&t}, 1000, progress);
  ASSERT_EQ(p.pieces.size(), 1U);
  EXPECT_EQ(p.pieces[0].pause, milliseconds(10));
}

TEST(chaos_toxic, slicer_cuts_into_delayed_slices_covering_every_byte_once) {
  const auto t = make("type=slicer,average_size=10,size_variation=4,delay=500");
  direction_progress progress;
  const auto p = plan({&t}, 1000, progress);
  std::size_t next = 0;
  for (std::size_t i = 0; i < p.pieces.size(); ++i) {
    const auto& piece = p.pieces[i];
    EXPECT_EQ(piece.offset, next);
    EXPECT_GE(piece.length, 6U);
    if (piece.offset + piece.length < 1000) {
      EXPECT_LE(piece.length, 14U);
    }
    EXPECT_EQ(piece.pause, i == 0 ? nanoseconds(0) : nanoseconds(microseconds(500)));
    next += piece.length;
  }
  EXPECT_EQ(next, 1000U);
  EXPECT_GE(p.pieces.size(), 1000U / 14);
}

TEST(chaos_toxic, limit_data_cuts_at_the_byte_limit_across_chunks) {
  const auto t = make("type=limit_data,bytes=250");
  direction_progress progress;
  auto p = plan({&t}, 100, progress);
  EXPECT_FALSE(p.close_after);
  EXPECT_EQ(p.pieces.at(0).length, 100U);
  p = plan({&t}, 100, progress);
  EXPECT_FALSE(p.close_after);
  p = plan({&t}, 100, progress);
  EXPECT_TRUE(p.close_after);
  ASSERT_EQ(p.pieces.size(), 1U);
  EXPECT_EQ(p.pieces[0].length, 50U);
  EXPECT_EQ(progress.forwarded, 250U);
  p = plan({&t}, 100, progress);
  EXPECT_TRUE(p.close_after);
  EXPECT_TRUE(p.pieces.empty());
}

TEST(chaos_toxic, timeout_drops_everything) {
  const auto t = make("type=timeout,timeout=0");
  const auto lat = make("type=latency,latency=5");
  direction_progress progress;
  const auto p = plan({&lat, &t}, 100, progress);
  EXPECT_TRUE(p.drop);
  EXPECT_TRUE(p.pieces.empty());
  EXPECT_EQ(progress.forwarded, 0U);
}

TEST(chaos_toxic, toxicity_is_a_probability) {
  auto t = make("type=reset_peer,toxicity=0.05");
  splitmix_rng random(11);
  int applied = 0;
  for (int i = 0; i < 20000; ++i) {
    applied += toxic_applies(t, random) ? 1 : 0;
  }
  EXPECT_NEAR(applied, 1000, 150);
  t.toxicity = 0;
  EXPECT_FALSE(toxic_applies(t, random));
  t.toxicity = 1;
  EXPECT_TRUE(toxic_applies(t, random));
}

}  // namespace
}  // namespace nines::core
