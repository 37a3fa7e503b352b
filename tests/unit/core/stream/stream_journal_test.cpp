#include "core/stream/stream_journal.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

const steady::time_point t0{};

std::string event(const std::string& key, int seq, const std::string& data) {
  return "data: " + data + "\nid: " + key + ":" + std::to_string(seq) + "\n\n";
}

journal_summary summary(std::string outcome) {
  journal_summary s;
  s.outcome = std::move(outcome);
  return s;
}

journal_head stream_head() { return journal_head{200, {{"content-type", "text/event-stream"}}, true}; }

TEST(stream_journal, a_reader_gets_the_events_after_its_id_and_is_woken_for_more) {
  stream_journal journal({});
  auto opened = journal.open("req1", "digest", std::nullopt, t0);
  ASSERT_EQ(opened.kind, stream_journal::open_kind::created);
  auto& e = *opened.entry;
  EXPECT_EQ(e.stream_key(), "req1");
  // Nothing yet: the waiter is kept.
  int woken = 0;
  auto v = e.read(0, 0, t0, [&] { ++woken; });
  EXPECT_FALSE(v.head);
  e.commit_head(stream_head(), t0);
  EXPECT_EQ(woken, 1);
  e.append_events(event("req1", 1, "a") + event("req1", 2, "b") + event("req1", 3, "c"), t0);
  EXPECT_EQ(woken, 1);  // a waiter is called once
  v = e.read(0, 1, t0);
  EXPECT_EQ(v.events, event("req1", 2, "b") + event("req1", 3, "c"));
  EXPECT_EQ(v.next_seq, 3U);
  EXPECT_FALSE(v.ended);
  // Caught up: wait, and be woken by the end.
  v = e.read(0, 3, t0, [&] { ++woken; });
  EXPECT_TRUE(v.events.empty());
  e.finish(event("req1", 4, "[DONE]"), summary("ok"), t0);
  EXPECT_EQ(woken, 2);
  v = e.read(0, 3, t0);
  EXPECT_EQ(v.events, event("req1", 4, "[DONE]"));
  EXPECT_TRUE(v.ended);
  EXPECT_EQ(v.summary.outcome, "ok");
}

TEST(stream_journal, reconnects_find_their_stream_only_with_the_same_request) {
  stream_journal journal({});
  journal.open("req1", "digest-a", std::nullopt, t0);
  EXPECT_TRUE(journal.find("req1", "digest-a", t0));
  EXPECT_FALSE(journal.find("req1", "digest-b", t0));  // another body or other credentials
  EXPECT_FALSE(journal.find("req2", "digest-a", t0));
  // A second request reusing the id gets a stream key of its own.
  auto again = journal.open("req1", "digest-c", std::nullopt, t0);
  EXPECT_EQ(again.kind, stream_journal::open_kind::created);
  EXPECT_NE(again.entry->stream_key(), "req1");
}

TEST(stream_journal, idempotency_key_attaches_duplicates_and_refuses_another_body) {
  stream_journal journal({});
  auto first = journal.open("r1", "body-1", "scope/key-1", t0);
  ASSERT_EQ(first.kind, stream_journal::open_kind::created);
  auto dup = journal.open("r2", "body-1", "scope/key-1", t0);
  EXPECT_EQ(dup.kind, stream_journal::open_kind::existing);
  EXPECT_EQ(dup.entry, first.entry);
  auto other = journal.open("r3", "body-2", "scope/key-1", t0);
  EXPECT_EQ(other.kind, stream_journal::open_kind::conflict);
  // Another client's key of the same name is another key (the scope is part of it).
  EXPECT_EQ(journal.open("r4", "body-2", "other-scope/key-1", t0).kind,
            stream_journal::open_kind::created);
}

TEST(stream_journal, a_failed_generation_is_not_replayed_to_a_retry) {
  stream_journal journal({});
  auto first = journal.open("r1", "body", "s/k", t0);
  first.entry->commit_head(journal_head{503, {}, false}, t0);
  first.entry->finish("{\"error\":{}}", summary("failed"), t0);
  auto retry = journal.open("r2", "body", "s/k", t0);
  EXPECT_EQ(retry.kind, stream_journal::open_kind::created);
  EXPECT_NE(retry.entry, first.entry);
  // A complete one is.
  retry.entry->commit_head(journal_head{200, {}, false}, t0);
  retry.entry->finish("{\"ok\":1}", summary("ok"), t0);
  auto third = journal.open("r3", "body", "s/k", t0);
  EXPECT_EQ(third.kind, stream_journal::open_kind::existing);
  EXPECT_EQ(third.entry->read(0, 0, t0).body, "{\"ok\":1}");
}

// The answer cache shares a generation only while it runs (and holds every event): an ended one,
// whatever its answer, is not replayed under the cache's key.
TEST(stream_journal, running_only_joins_a_running_generation_and_replaces_an_ended_one) {
  stream_journal journal({});
  auto first = journal.open("r1", "body", "cache:k", t0, true);
  ASSERT_EQ(first.kind, stream_journal::open_kind::created);
  first.entry->commit_head(stream_head(), t0);
  first.entry->append_events(event("r1", 1, "a"), t0);
  auto joined = journal.open("r2", "body", "cache:k", t0, true);
  EXPECT_EQ(joined.kind, stream_journal::open_kind::existing);
  EXPECT_EQ(joined.entry, first.entry);
  first.entry->finish(event("r1", 2, "[DONE]"), summary("ok"), t0);
  auto after = journal.open("r3", "body", "cache:k", t0, true);
  EXPECT_EQ(after.kind, stream_journal::open_kind::created);
  EXPECT_NE(after.entry, first.entry);
  // The first stream's clients can still come back for the rest of it.
  EXPECT_EQ(journal.find("r1", "body", t0), first.entry);
  // Without running_only (a client's own Idempotency-Key) the ended answer is replayed.
  after.entry->commit_head(journal_head{400, {}, false}, t0);
  after.entry->finish("{\"error\":{}}", summary("ok"), t0);
  EXPECT_EQ(journal.open("r4", "body", "cache:k", t0).kind, stream_journal::open_kind::existing);
  EXPECT_EQ(journal.open("r5", "body", "cache:k", t0, true).kind,
            stream_journal::open_kind::created);
}

TEST(stream_journal, running_only_does_not_join_a_stream_short_of_its_first_events) {
  stream_journal journal({4096, milliseconds(120000), milliseconds(1000)});
  auto first = journal.open("r1", "body", "cache:k", t0, true);
  first.entry->commit_head(stream_head(), t0);
  for (int i = 1; i <= 40; ++i) {  // more than the bound holds: the oldest events go
    first.entry->append_events(event("r1", i, std::string(200, 'x')), t0);
  }
  const auto later = journal.open("r2", "body", "cache:k", t0, true);
  EXPECT_EQ(later.kind, stream_journal::open_kind::created);
  // The first generation goes on writing into its own entry.
  EXPECT_TRUE(first.entry->append_events(event("r1", 41, "y"), t0));
  EXPECT_LE(journal.read_stats().bytes, 4096u);
}

TEST(stream_journal, entries_expire_a_ttl_after_they_end) {
  stream_journal journal({.max_bytes = 1 << 20, .ttl = milliseconds(1000)});
  auto e = journal.open("r1", "d", std::nullopt, t0).entry;
  e->commit_head(stream_head(), t0);
  e->finish(event("r1", 1, "x"), {}, t0 + milliseconds(500));
  EXPECT_TRUE(journal.find("r1", "d", t0 + milliseconds(1400)));
  EXPECT_FALSE(journal.find("r1", "d", t0 + milliseconds(1501)));
  EXPECT_EQ(journal.read_stats().entries, 0U);
  EXPECT_EQ(journal.read_stats().bytes, 0U);
}

TEST(stream_journal, a_generation_without_clients_for_a_ttl_is_cancelled) {
  stream_journal journal({.max_bytes = 1 << 20, .ttl = milliseconds(1000)});
  auto e = journal.open("r1", "d", std::nullopt, t0).entry;
  const auto client = e->attach(0, t0);
  EXPECT_FALSE(e->cancelled(t0 + milliseconds(5000)));  // its client is there
  e->detach(client, t0 + milliseconds(100));
  EXPECT_FALSE(e->cancelled(t0 + milliseconds(1000)));
  EXPECT_TRUE(e->cancelled(t0 + milliseconds(1101)));
  // A reconnect in time keeps it going.
  auto e2 = journal.open("r2", "d", std::nullopt, t0).entry;
  e2->detach(e2->attach(0, t0), t0);
  e2->attach(0, t0 + milliseconds(900));
  EXPECT_FALSE(e2->cancelled(t0 + milliseconds(5000)));
}

TEST(stream_journal, memory_stays_within_its_bound) {
  const std::size_t bound = 64 * 1024;
  stream_journal journal({.max_bytes = bound, .ttl = milliseconds(60000)});
  std::vector<std::shared_ptr<journal_entry>> running;
  for (int r = 0; r < 200; ++r) {
    const auto key = "r" + std::to_string(r);
    auto e = journal.open(key, "d", std::nullopt, t0 + milliseconds(r)).entry;
    e->commit_head(stream_head(), t0 + milliseconds(r));
    for (int i = 1; i <= 20; ++i) {
      e->append_events(event(key, i, std::string(40, 'x')), t0 + milliseconds(r));
      ASSERT_LE(journal.read_stats().bytes, bound) << r << " " << i;
    }
    e->finish(event(key, 21, "[DONE]"), {}, t0 + milliseconds(r));
    ASSERT_LE(journal.read_stats().bytes, bound) << r;
  }
  const auto stats = journal.read_stats();
  EXPECT_GT(stats.evicted, 100U);  // the oldest finished streams went to make room
  EXPECT_LT(stats.entries, 200U);
  // The newest are still there, whole.
  auto last = journal.find("r199", "d", t0 + milliseconds(200));
  ASSERT_TRUE(last);
  EXPECT_FALSE(last->read(0, 0, t0).lost);
}

// Many streams at once, each read by its client as it grows: the bound holds by dropping what
// the clients already have, and no client ever misses an event.
TEST(stream_journal, live_readers_that_keep_up_lose_nothing_under_the_bound) {
  const std::size_t bound = 16 * 1024;
  stream_journal journal({.max_bytes = bound, .ttl = milliseconds(60000)});
  struct live {
    std::shared_ptr<journal_entry> entry;
    std::uint64_t client = 0;
    std::uint64_t seen = 0;
    std::string text;
  };
  std::vector<live> streams;
  for (int r = 0; r < 24; ++r) {
    auto e = journal.open("s" + std::to_string(r), "d", std::nullopt, t0).entry;
    e->commit_head(stream_head(), t0);
    streams.push_back({e, e->attach(0, t0), 0, {}});
  }
  for (int i = 1; i <= 40; ++i) {
    for (auto& s : streams) {
      s.entry->append_events(event(s.entry->stream_key(), i, std::string(60, 'z')), t0);
      ASSERT_LE(journal.read_stats().bytes, bound);
      const auto v = s.entry->read(s.client, s.seen, t0);
      ASSERT_FALSE(v.lost) << s.entry->stream_key() << " " << i;
      s.seen = v.next_seq;
      s.text += v.events;
    }
  }
  for (auto& s : streams) {
    EXPECT_EQ(s.seen, 40U);
  }
  EXPECT_GT(journal.read_stats().events_dropped, 0U);
}

// A generation faster than its reader: with a waker, an append that would drop events the attached
// reader has not read yet waits instead, and goes in once the reader has read.
TEST(stream_journal, a_producer_waits_for_its_reader_instead_of_dropping_unread_events) {
  stream_journal journal({1024, milliseconds(60000)});
  auto e = journal.open("s", "d", std::nullopt, t0).entry;
  const auto reader = e->attach(0, t0);
  e->commit_head(stream_head(), t0);
  const std::string payload(200, 'x');
  int woken = 0;
  int appended = 0;
  for (int seq = 1; seq <= 20; ++seq) {
    if (!e->append_events(event("s", seq, payload), t0, [&] { ++woken; })) {
      break;
    }
    ++appended;
  }
  ASSERT_GT(appended, 0);
  ASSERT_LT(appended, 20) << "the bound was reached";
  EXPECT_LE(journal.read_stats().bytes, 1024U);
  EXPECT_EQ(journal.read_stats().events_dropped, 0U);
  // The reader reads what is there: the producer is woken, and its append fits now.
  auto v = e->read(reader, 0, t0);
  EXPECT_EQ(v.next_seq, static_cast<std::uint64_t>(appended));
  EXPECT_EQ(woken, 1);
  EXPECT_TRUE(e->append_events(event("s", appended + 1, payload), t0, [&] { ++woken; }));
  v = e->read(reader, v.next_seq, t0);
  EXPECT_EQ(v.events, event("s", appended + 1, payload));
  EXPECT_FALSE(v.lost);
  // Room was made from what the reader had read (kept only for reconnects), nothing else.
  EXPECT_LE(journal.read_stats().events_dropped, static_cast<std::uint64_t>(appended));
  EXPECT_LE(journal.read_stats().bytes, 1024U);
}

// A stalled client (unread events, no read for `stalled_reader`) holds no producer back: another
// stream's append goes in at once, and the stalled stream's oldest events make the room.
TEST(stream_journal, a_stalled_reader_holds_no_producer_back) {
  stream_journal journal({1024, milliseconds(60000), milliseconds(1000)});
  auto slow = journal.open("slow", "d1", std::nullopt, t0).entry;
  const auto stalled = slow->attach(0, t0);
  slow->commit_head(stream_head(), t0);
  const std::string payload(200, 'x');
  for (int seq = 1; seq <= 3; ++seq) {
    ASSERT_TRUE(slow->append_events(event("slow", seq, payload), t0, [] {}));
  }
  auto fast = journal.open("fast", "d2", std::nullopt, t0).entry;
  const auto reader = fast->attach(0, t0);
  fast->commit_head(stream_head(), t0);
  int woken = 0;
  // Right away the slow client is merely behind, not stalled: the fast producer waits.
  EXPECT_FALSE(fast->append_events(event("fast", 1, payload), t0 + milliseconds(10), [&] { ++woken; }));
  // Two seconds later, with no read, it is stalled: the append goes in, the slow stream pays.
  const auto later = t0 + milliseconds(2000);
  EXPECT_TRUE(fast->append_events(event("fast", 1, payload), later, [&] { ++woken; }));
  EXPECT_LE(journal.read_stats().bytes, 1024U);
  EXPECT_EQ(fast->read(reader, 0, later).events, event("fast", 1, payload));
  EXPECT_TRUE(slow->read(stalled, 0, later).lost);  // it comes back to a clear error
}

TEST(stream_journal, one_stream_larger_than_the_bound_keeps_its_tail_and_says_what_was_lost) {
  stream_journal journal({.max_bytes = 4096, .ttl = milliseconds(60000)});
  auto e = journal.open("big", "d", std::nullopt, t0).entry;
  e->commit_head(stream_head(), t0);
  for (int i = 1; i <= 200; ++i) {
    e->append_events(event("big", i, std::string(100, 'y')), t0);
  }
  EXPECT_LE(journal.read_stats().bytes, 4096U);
  EXPECT_GT(journal.read_stats().events_dropped, 100U);
  EXPECT_TRUE(e->read(0, 0, t0).lost);     // a reconnect from the start cannot be served
  const auto tail = e->read(0, 199, t0);  // the latest events can
  EXPECT_FALSE(tail.lost);
  EXPECT_EQ(tail.events, event("big", 200, std::string(100, 'y')));
}

TEST(stream_journal, event_ids_round_trip) {
  EXPECT_EQ(format_event_id("abc", 17), "abc:17");
  const auto id = parse_event_id("req:with:colons:42");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->stream_key, "req:with:colons");
  EXPECT_EQ(id->seq, 42U);
  EXPECT_FALSE(parse_event_id("nocolon"));
  EXPECT_FALSE(parse_event_id(":5"));
  EXPECT_FALSE(parse_event_id("abc:x"));
}

}  // namespace
}  // namespace nines::core
