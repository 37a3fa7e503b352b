// The shared journal's records (core/redis/redis_journal_layout.hpp): keys, heads and ends
// encoded and read back, and what a reader refuses from Redis (shapes, ids, header fields).

#include "core/redis/redis_journal_layout.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using kind = redis_reply::kind;

redis_reply str(std::string text) {
  redis_reply r;
  r.type = kind::string;
  r.text = std::move(text);
  return r;
}
redis_reply arr(std::vector<redis_reply> elements) {
  redis_reply r;
  r.type = kind::array;
  r.elements = std::move(elements);
  return r;
}
redis_reply entry(std::string id, std::string field, std::string value) {
  return arr({str(std::move(id)), arr({str(std::move(field)), str(std::move(value))})});
}
redis_reply xread(std::vector<redis_reply> entries) {
  return arr({arr({str("nines:j:{x}:e"), arr(std::move(entries))})});
}

TEST(redis_journal_layout, keys_share_a_hash_tag_and_depend_on_the_request) {
  const auto k = redis_journal_keys_for("agent-7", "digest");
  const auto tag = k.meta.substr(k.meta.find('{'), k.meta.find('}') - k.meta.find('{') + 1);
  EXPECT_EQ(tag.size(), 66U);  // {64 hex digits}
  EXPECT_NE(k.events.find(tag), std::string::npos);
  EXPECT_NE(k.meta, k.events);
  EXPECT_NE(redis_journal_keys_for("agent-7", "other").meta, k.meta);
  EXPECT_NE(redis_journal_keys_for("agent-8", "digest").meta, k.meta);
  // The stream key and the digest are not simply glued: ("a", "bc") is not ("ab", "c").
  EXPECT_NE(redis_journal_keys_for("a", "bc").meta, redis_journal_keys_for("ab", "c").meta);
  EXPECT_EQ(redis_journal_keys_for("agent-7", "digest").meta, k.meta);
}

TEST(redis_journal_layout, heads_and_ends_round_trip) {
  journal_head head{200, {{"content-type", "text/event-stream"}, {"x-request-id", "r-1"}}, true};
  const auto back = decode_journal_head(encode_journal_head(head));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->status, 200U);
  EXPECT_TRUE(back->stream);
  EXPECT_EQ(back->fields, head.fields);

  journal_summary s{"stream_incomplete", 3, 1, {"u0", "u1"}, "u1", "u0->u1@12", "cut"};
  const auto end = decode_journal_end(encode_journal_end(s, "{\"whole\":\"body\\n\"}"));
  ASSERT_TRUE(end);
  EXPECT_EQ(end->summary.outcome, s.outcome);
  EXPECT_EQ(end->summary.attempts, 3U);
  EXPECT_EQ(end->summary.resumes, 1U);
  EXPECT_EQ(end->summary.upstreams, s.upstreams);
  EXPECT_EQ(end->summary.resume_log, s.resume_log);
  EXPECT_EQ(end->body, "{\"whole\":\"body\\n\"}");
}

TEST(redis_journal_layout, a_head_that_could_break_a_response_is_refused) {
  const char* refused[] = {
      R"({"status":200,"stream":true,"fields":[["x-a","b\r\nset-cookie: s=1"]]})",
      R"({"status":200,"stream":true,"fields":[["x a","b"]]})",
      R"({"status":200,"stream":true,"fields":[["","b"]]})",
      R"({"status":200,"stream":true,"fields":[["x-a","b\u0000"]]})",
      R"({"status":99,"stream":true,"fields":[]})",
      R"({"status":600,"stream":true,"fields":[]})",
      R"({"status":-1,"stream":true,"fields":[]})",
      R"({"status":200,"stream":"yes","fields":[]})",
      R"({"status":200,"stream":true,"fields":[["x-a"]]})",
      R"({"status":200,"stream":true,"fields":[["x-a",1]]})",
      R"({"status":200,"stream":true})",
      R"([200])",
      "not json",
  };
  for (const char* text : refused) {
    EXPECT_FALSE(decode_journal_head(text)) << text;
  }
  EXPECT_FALSE(decode_journal_end(R"({"outcome":"ok"})"));
  EXPECT_FALSE(decode_journal_end(
      R"({"outcome":"ok","attempts":-1,"resumes":0,"upstreams":[],"served_by":"","resume_log":"","detail":"","body":""})"));
}

TEST(redis_journal_layout, a_read_takes_events_in_order_up_to_the_end) {
  journal_summary ok;
  ok.outcome = "ok";
  const std::string end = encode_journal_end(ok, "");
  auto got = parse_journal_follow(xread({entry("0-5", "d", "data: 5\n\n"),
                                         entry("0-6", "d", "data: 6\n\n"), entry("0-7", "x", end)}),
                                  4);
  EXPECT_FALSE(got.malformed);
  EXPECT_FALSE(got.incomplete);
  EXPECT_EQ(got.events, "data: 5\n\ndata: 6\n\n");
  EXPECT_EQ(got.last, 6U);
  ASSERT_TRUE(got.end);
  EXPECT_EQ(got.end->summary.outcome, "ok");

  redis_reply nil;  // BLOCK timed out: nothing new
  const auto none = parse_journal_follow(nil, 9);
  EXPECT_FALSE(none.malformed);
  EXPECT_EQ(none.last, 9U);
  EXPECT_TRUE(none.events.empty());
}

TEST(redis_journal_layout, a_jump_or_a_gap_mark_is_incomplete_and_odd_shapes_are_malformed) {
  EXPECT_TRUE(parse_journal_follow(xread({entry("0-7", "d", "x")}), 5).incomplete);
  auto marked = parse_journal_follow(xread({entry("0-6", "d", "e6"), entry("0-7", "g", "1")}), 5);
  EXPECT_TRUE(marked.incomplete);
  EXPECT_EQ(marked.events, "e6");  // what came before the mark is still what it was
  const std::vector<redis_reply> odd[] = {
      {entry("1-6", "d", "x")},              // not an id this writer makes
      {entry("0-06", "d", "x")},             // leading zero
      {entry("0-5", "d", "x")},              // not after the one asked
      {entry("0-6", "q", "x")},              // unknown field
      {entry("0-6", "x", "not json")},       // an end that does not decode
      {arr({str("0-6"), arr({str("d")})})},  // a field without its value
      {str("0-6")},
  };
  for (const auto& entries : odd) {
    EXPECT_TRUE(parse_journal_follow(xread(entries), 5).malformed);
  }
  EXPECT_TRUE(parse_journal_follow(str("OK"), 5).malformed);
  EXPECT_TRUE(parse_journal_follow(arr({}), 5).malformed);
}

TEST(redis_journal_layout, meta_says_whether_the_answer_is_there) {
  redis_reply nil;
  const auto absent = parse_journal_meta(arr({nil, nil, nil}));
  EXPECT_FALSE(absent.present);
  EXPECT_FALSE(absent.head);
  const auto head = encode_journal_head(journal_head{200, {}, true});
  const auto there = parse_journal_meta(arr({str(head), nil, str("gw-1")}));
  EXPECT_TRUE(there.present);
  ASSERT_TRUE(there.head);
  EXPECT_FALSE(there.broken);
  EXPECT_TRUE(parse_journal_meta(arr({str(head), str("1"), str("gw-1")})).broken);
  EXPECT_TRUE(parse_journal_meta(arr({str("{bad"), nil, str("gw-1")})).malformed);
  EXPECT_TRUE(parse_journal_meta(arr({nil, nil})).malformed);
  EXPECT_TRUE(parse_journal_meta(str("x")).malformed);
}

TEST(redis_journal_layout, a_long_run_of_events_is_split_into_calls) {
  redis_journal_write w;
  w.head = "H";
  w.end = "E";
  w.first_seq = 10;
  for (int i = 0; i < 5; ++i) {
    w.events.push_back("e" + std::to_string(i));
  }
  std::string wire;
  const auto keys = redis_journal_keys_for("s", "d");
  ASSERT_EQ(append_journal_write(wire, keys, "gw-1", "sha", 1000, 3000, w, 2), 3U);
  redis_reply_reader reader;
  ASSERT_TRUE(reader.feed(wire));
  // Each command is read back as its words (a RESP array of bulk strings).
  std::vector<std::vector<std::string>> calls;
  while (auto r = reader.next()) {
    std::vector<std::string> words;
    for (const auto& e : r->elements) {
      words.push_back(e.text);
    }
    calls.push_back(words);
  }
  ASSERT_EQ(calls.size(), 3U);
  // EVALSHA sha 2 meta events owner ttl lease head end broken first_seq events...
  EXPECT_EQ(calls[0][7], "3000");  // every call renews the lease
  EXPECT_EQ(calls[0][8], "H");     // the head with the first call only
  EXPECT_EQ(calls[0][9], "");      // the end with the last only
  EXPECT_EQ(calls[0][11], "10");
  EXPECT_EQ(calls[0].size(), 14U);
  EXPECT_EQ(calls[1][8], "");
  EXPECT_EQ(calls[1][11], "12");
  EXPECT_EQ(calls[2][9], "E");
  EXPECT_EQ(calls[2][11], "14");
  EXPECT_EQ(calls[2].size(), 13U);
  // Nothing but an end: one call with no events.
  redis_journal_write only_end;
  only_end.end = "E";
  std::string one;
  EXPECT_EQ(append_journal_write(one, keys, "gw-1", "sha", 1000, 0, only_end), 1U);
}

TEST(redis_journal_layout, an_idempotency_claim_says_whose_answer_it_is) {
  const auto set = idempotency_claim_command("scope/step-1", "agent-7", "digest-1", 240000);
  ASSERT_EQ(set.size(), 7U);
  EXPECT_EQ(set[0], "SET");
  EXPECT_EQ(set[1].rfind("nines:i:{", 0), 0U);
  EXPECT_EQ(set[1].find("step-1"), std::string::npos);  // the key is hashed: nothing of it shows
  EXPECT_EQ(set[2], "agent-7\ndigest-1");
  EXPECT_EQ(set[3], "NX");
  EXPECT_EQ(set[4], "GET");
  EXPECT_EQ(set[6], "240000");
  EXPECT_NE(idempotency_claim_command("scope/step-2", "agent-7", "digest-1", 1)[1], set[1]);

  redis_reply nil;
  EXPECT_EQ(parse_idempotency_claim(nil, "digest-1").type, idempotency_claim::kind::ours);
  const auto same = parse_idempotency_claim(str("agent-9\ndigest-1"), "digest-1");
  EXPECT_EQ(same.type, idempotency_claim::kind::elsewhere);
  EXPECT_EQ(same.stream_key, "agent-9");
  EXPECT_EQ(parse_idempotency_claim(str("agent-9\ndigest-2"), "digest-1").type,
            idempotency_claim::kind::conflict);
  for (const auto& odd : {str("no newline"), str("\ndigest-1"), str("a\x01b\ndigest-1"),
                          str(std::string(300, 'k') + "\ndigest-1")}) {
    EXPECT_EQ(parse_idempotency_claim(odd, "digest-1").type, idempotency_claim::kind::unknown)
        << odd.text;
  }
  redis_reply error;
  error.type = kind::error;
  error.text = "ERR syntax error";
  EXPECT_EQ(parse_idempotency_claim(error, "digest-1").type, idempotency_claim::kind::unknown);
  const auto release = idempotency_release_command("scope/step-1", "agent-7", "digest-1");
  ASSERT_EQ(release.size(), 5U);
  EXPECT_EQ(release[0], "EVAL");
  EXPECT_EQ(release[3], set[1]);
  EXPECT_EQ(release[4], set[2]);  // only the claim made for this answer is given up
}

TEST(redis_journal_layout, a_takeover_answer_is_read_strictly) {
  using k = journal_takeover::kind;
  const auto words = journal_takeover_command(redis_journal_keys_for("s", "d"), "gw-b", 3000, 9000);
  ASSERT_EQ(words.size(), 8U);
  EXPECT_EQ(words[0], "EVAL");
  EXPECT_EQ(words[5], "gw-b");
  EXPECT_EQ(words[6], "3000");
  EXPECT_EQ(words[7], "9000");
  EXPECT_EQ(parse_journal_takeover(arr({str("absent")})).type, k::absent);
  EXPECT_EQ(parse_journal_takeover(arr({str("ended")})).type, k::ended);
  const auto held = parse_journal_takeover(arr({str("held"), str("120")}));
  EXPECT_EQ(held.type, k::held);
  EXPECT_TRUE(held.leased);
  EXPECT_FALSE(parse_journal_takeover(arr({str("held"), str("-1")})).leased);  // no lease at all
  const auto ours = parse_journal_takeover(arr({str("ours"), str("gw-b/3"), str("17")}));
  EXPECT_EQ(ours.type, k::ours);
  EXPECT_EQ(ours.owner, "gw-b/3");
  EXPECT_EQ(ours.last, 17U);
  // Anything else is not the script's answer.
  EXPECT_EQ(parse_journal_takeover(arr({str("ours"), str("gw-b/3"), str("-1")})).type,
            k::malformed);
  EXPECT_EQ(parse_journal_takeover(arr({str("ours"), str(""), str("1")})).type, k::malformed);
  EXPECT_EQ(parse_journal_takeover(arr({str("ours"), str("gw-b/3")})).type, k::malformed);
  EXPECT_EQ(parse_journal_takeover(arr({str("mine")})).type, k::malformed);
  EXPECT_EQ(parse_journal_takeover(arr({str("absent"), str("x")})).type, k::malformed);
  EXPECT_EQ(parse_journal_takeover(str("ours")).type, k::malformed);
  EXPECT_EQ(parse_journal_takeover(arr({})).type, k::malformed);
}

}  // namespace
}  // namespace nines::core
