#include "core/upload/upload_ledger.hpp"

#include <gtest/gtest.h>

#include "core/access/secret_digest.hpp"

namespace nines::core {
namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;
const steady::time_point t0 = steady::time_point(std::chrono::hours(1000));
const std::string id_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string id_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

upload_limits small() {
  upload_limits l;
  l.max_upload_bytes = 100;
  l.max_total_bytes = 150;
  l.max_uploads = 3;
  l.ttl = milliseconds(1000);
  return l;
}

std::string digest_of(std::string_view text) {
  const auto d = sha256_of(text);
  return std::string(reinterpret_cast<const char*>(d.data()), d.size());
}

TEST(upload_ledger, creation_is_bounded_per_upload_in_bytes_and_in_number) {
  upload_ledger l(small());
  EXPECT_EQ(l.create(id_a, "k", 101, "", std::nullopt, t0), upload_problem::too_large);
  EXPECT_EQ(l.create(id_a, "k", 100, "", std::nullopt, t0), upload_problem::none);
  EXPECT_EQ(l.create(id_b, "k", 51, "", std::nullopt, t0), upload_problem::storage_full);
  EXPECT_EQ(l.create(id_b, "k", 50, "", std::nullopt, t0), upload_problem::none);
  EXPECT_EQ(l.create(id_a, "k", 0, "", std::nullopt, t0), upload_problem::storage_full);  // taken
  EXPECT_EQ(l.read_stats().declared_bytes, 150u);
  EXPECT_EQ(l.remove(id_a, "k", t0), upload_problem::none);
  EXPECT_EQ(l.read_stats().declared_bytes, 50u);
  EXPECT_EQ(l.create("cccccccccccccccccccccccccccccccc", "k", 100, "", std::nullopt, t0),
            upload_problem::none);
}

TEST(upload_ledger, an_upload_is_its_owners_only) {
  upload_ledger l(small());
  ASSERT_EQ(l.create(id_a, "alice", 10, "", std::nullopt, t0), upload_problem::none);
  upload_problem why{};
  EXPECT_NE(l.find(id_a, "alice", t0, why), nullptr);
  EXPECT_EQ(l.find(id_a, "bob", t0, why), nullptr);
  EXPECT_EQ(why, upload_problem::not_found);
  std::uint64_t epoch = 0;
  EXPECT_EQ(l.begin_append(id_a, "bob", 0, t0, epoch), upload_problem::not_found);
  EXPECT_EQ(l.remove(id_a, "bob", t0), upload_problem::not_found);
  EXPECT_EQ(l.take_over(id_a, "bob", t0, why), nullptr);
  EXPECT_NE(l.find(id_a, "alice", t0, why), nullptr);  // bob changed nothing
}

TEST(upload_ledger, appends_go_at_the_stored_offset_and_never_past_the_length) {
  upload_ledger l(small());
  ASSERT_EQ(l.create(id_a, "k", 10, "", std::nullopt, t0), upload_problem::none);
  std::uint64_t epoch = 0;
  EXPECT_EQ(l.begin_append(id_a, "k", 1, t0, epoch), upload_problem::offset_mismatch);
  ASSERT_EQ(l.begin_append(id_a, "k", 0, t0, epoch), upload_problem::none);
  EXPECT_EQ(l.commit(id_a, epoch, "01234", t0), upload_problem::none);
  EXPECT_EQ(l.commit(id_a, epoch, "567890", t0), upload_problem::too_large);
  EXPECT_EQ(l.commit(id_a, epoch, "56789", t0), upload_problem::none);
  upload_problem why{};
  const auto* u = l.find(id_a, "k", t0, why);
  ASSERT_NE(u, nullptr);
  EXPECT_TRUE(u->complete());
  const auto d = u->content.current();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d.data()), d.size()),
            digest_of("0123456789"));
}

TEST(upload_ledger, a_newer_append_or_offset_request_takes_over_from_an_open_one) {
  upload_ledger l(small());
  ASSERT_EQ(l.create(id_a, "k", 10, "", std::nullopt, t0), upload_problem::none);
  std::uint64_t old_epoch = 0;
  ASSERT_EQ(l.begin_append(id_a, "k", 0, t0, old_epoch), upload_problem::none);
  ASSERT_EQ(l.commit(id_a, old_epoch, "012", t0), upload_problem::none);
  // The client's link dropped; its old request is still open here. It comes back and asks.
  upload_problem why{};
  const auto* u = l.take_over(id_a, "k", t0, why);
  ASSERT_NE(u, nullptr);
  EXPECT_EQ(u->offset, 3u);
  EXPECT_FALSE(l.current(id_a, old_epoch));
  EXPECT_EQ(l.commit(id_a, old_epoch, "345", t0), upload_problem::fenced);  // what it had in hand
  std::uint64_t epoch = 0;
  ASSERT_EQ(l.begin_append(id_a, "k", 3, t0, epoch), upload_problem::none);  // no lock to wait for
  EXPECT_EQ(l.commit(id_a, epoch, "3456789", t0), upload_problem::none);
  // And an append that comes while another is open takes over too.
  ASSERT_EQ(l.create(id_b, "k", 4, "", std::nullopt, t0), upload_problem::none);
  std::uint64_t first = 0, second = 0;
  ASSERT_EQ(l.begin_append(id_b, "k", 0, t0, first), upload_problem::none);
  ASSERT_EQ(l.begin_append(id_b, "k", 0, t0, second), upload_problem::none);
  EXPECT_EQ(l.commit(id_b, first, "ab", t0), upload_problem::fenced);
  EXPECT_EQ(l.commit(id_b, second, "abcd", t0), upload_problem::none);
}

TEST(upload_ledger, a_declared_digest_is_checked_when_the_last_byte_arrives) {
  upload_ledger l(small());
  ASSERT_EQ(l.create(id_a, "k", 4, "", digest_of("abcd"), t0), upload_problem::none);
  ASSERT_EQ(l.create(id_b, "k", 4, "", digest_of("abcd"), t0), upload_problem::none);
  std::uint64_t e = 0;
  ASSERT_EQ(l.begin_append(id_a, "k", 0, t0, e), upload_problem::none);
  EXPECT_EQ(l.commit(id_a, e, "ab", t0), upload_problem::none);
  EXPECT_EQ(l.commit(id_a, e, "cd", t0), upload_problem::none);
  ASSERT_EQ(l.begin_append(id_b, "k", 0, t0, e), upload_problem::none);
  EXPECT_EQ(l.commit(id_b, e, "abce", t0), upload_problem::digest_mismatch);
  upload_problem why{};
  EXPECT_EQ(l.find(id_b, "k", t0, why), nullptr);
  EXPECT_EQ(why, upload_problem::gone);
  EXPECT_EQ(l.read_stats().declared_bytes, 4u);
}

TEST(upload_ledger, uploads_expire_after_their_last_change_and_leave_a_tombstone) {
  upload_ledger l(small());
  ASSERT_EQ(l.create(id_a, "k", 10, "", std::nullopt, t0), upload_problem::none);
  std::uint64_t e = 0;
  ASSERT_EQ(l.begin_append(id_a, "k", 0, t0 + milliseconds(500), e), upload_problem::none);
  upload_problem seen{};
  EXPECT_EQ(l.find(id_a, "k", t0 + milliseconds(899), seen)->expires, t0 + milliseconds(1000))
      << "an append that stores nothing keeps nothing alive";
  ASSERT_EQ(l.commit(id_a, e, "x", t0 + milliseconds(900)), upload_problem::none);
  EXPECT_TRUE(l.sweep(t0 + milliseconds(1500)).empty());  // stored bytes moved its expiry on
  upload_problem why{};
  EXPECT_EQ(l.find(id_a, "k", t0 + milliseconds(1900), why), nullptr);  // due, not yet swept
  EXPECT_EQ(why, upload_problem::gone);
  EXPECT_EQ(l.sweep(t0 + milliseconds(1900)), std::vector<std::string>{id_a});
  EXPECT_EQ(l.find(id_a, "k", t0 + milliseconds(2000), why), nullptr);
  EXPECT_EQ(why, upload_problem::gone);
  EXPECT_EQ(l.read_stats().uploads, 0u);
  EXPECT_EQ(l.find(id_a, "someone else", t0 + milliseconds(2000), why), nullptr);
  EXPECT_EQ(why, upload_problem::not_found);  // another key learns nothing from a tombstone
  l.sweep(t0 + milliseconds(3000));           // the tombstone's time is up too
  EXPECT_EQ(l.find(id_a, "k", t0 + milliseconds(3000), why), nullptr);
  EXPECT_EQ(why, upload_problem::not_found);
  EXPECT_EQ(l.find(id_b, "k", t0, why), nullptr);
  EXPECT_EQ(why, upload_problem::not_found);
}

TEST(upload_ledger, one_key_cannot_take_the_whole_store) {
  auto limits = small();
  limits.max_key_bytes = 60;
  limits.max_key_uploads = 2;
  upload_ledger l(limits);
  EXPECT_EQ(l.create(id_a, "greedy", 60, "", std::nullopt, t0), upload_problem::none);
  EXPECT_EQ(l.create(id_b, "greedy", 1, "", std::nullopt, t0), upload_problem::storage_full);
  EXPECT_EQ(l.create(id_b, "polite", 60, "", std::nullopt, t0), upload_problem::none);
  EXPECT_EQ(l.remove(id_a, "greedy", t0), upload_problem::none);
  EXPECT_EQ(l.create(id_a, "greedy", 30, "", std::nullopt, t0), upload_problem::none);
  upload_ledger counted(limits);
  EXPECT_EQ(counted.create(id_a, "k", 1, "", std::nullopt, t0), upload_problem::none);
  EXPECT_EQ(counted.create(id_b, "k", 1, "", std::nullopt, t0), upload_problem::none);
  EXPECT_EQ(counted.create("cccccccccccccccccccccccccccccccc", "k", 1, "", std::nullopt, t0),
            upload_problem::storage_full);
}

TEST(upload_ledger, a_finished_upload_is_one_requests_body_at_a_time) {
  upload_ledger l(small());
  ASSERT_EQ(l.create(id_a, "k", 3, "", std::nullopt, t0), upload_problem::none);
  upload_problem why{};
  EXPECT_EQ(l.claim(id_a, "k", t0, why), nullptr);
  EXPECT_EQ(why, upload_problem::incomplete);
  std::uint64_t e = 0;
  ASSERT_EQ(l.begin_append(id_a, "k", 0, t0, e), upload_problem::none);
  ASSERT_EQ(l.commit(id_a, e, "abc", t0), upload_problem::none);
  EXPECT_NE(l.claim(id_a, "k", t0, why), nullptr);
  EXPECT_EQ(l.claim(id_a, "k", t0, why), nullptr);
  EXPECT_EQ(why, upload_problem::in_use);
  EXPECT_EQ(l.claim(id_a, "other", t0, why), nullptr);
  EXPECT_EQ(why, upload_problem::not_found);
  l.release(id_a);
  EXPECT_NE(l.claim(id_a, "k", t0, why), nullptr);  // a retry of the request
}

TEST(upload_ledger, a_staged_append_commits_with_the_digest_its_writer_kept) {
  upload_ledger l(small());
  ASSERT_EQ(l.create(id_a, "k", 6, "", digest_of("abcdef"), t0), upload_problem::none);
  std::uint64_t e = 0;
  ASSERT_EQ(l.begin_append(id_a, "k", 0, t0, e), upload_problem::none);
  ASSERT_EQ(l.commit(id_a, e, "abc", t0), upload_problem::none);
  upload_problem why{};
  auto content = l.find(id_a, "k", t0, why)->content.copy();
  content.update("def");
  EXPECT_EQ(l.commit_hashed(id_a, e, 4, content.copy(), t0), upload_problem::too_large);
  EXPECT_EQ(l.commit_hashed(id_a, e, 3, std::move(content), t0), upload_problem::none);
  EXPECT_TRUE(l.find(id_a, "k", t0, why)->complete());
}

}  // namespace
}  // namespace nines::core
