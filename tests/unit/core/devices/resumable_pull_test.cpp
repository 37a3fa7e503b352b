// A pull that goes on after its stream broke (core/devices/resumable_pull.hpp): the agent gets
// the file once, whole, in sync pieces, whatever the breaks; a file that changed or shrank
// between the two reads is refused, never spliced; adb's own FAIL passes as it is.
#include "core/devices/resumable_pull.hpp"

#include <gtest/gtest.h>

#include <string>

#include "core/devices/adb_transport_wire.hpp"

namespace nines::core {
namespace {

// A file of `size` bytes, different at every offset.
std::string file_of(std::size_t size, char salt = 0) {
  std::string f(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    f[i] = static_cast<char>((i * 131 + i / 251 + salt) & 0xff);
  }
  return f;
}

// adb's whole answer to a RECV of `file`, in pieces of `piece` bytes.
std::string answer_of(const std::string& file, std::size_t piece = adb_sync_max_data) {
  std::string out;
  for (std::size_t at = 0; at < file.size(); at += piece) {
    out += adb_sync_data(std::string_view(file).substr(at, piece));
  }
  return out + adb_sync_done(1700000000);
}

// What the agent's adb client makes of the bytes it got: the file, and whether DONE ended it
// (a FAIL's message goes to `fail`).
struct agent_view {
  std::string file;
  bool done = false;
  std::string fail;
};
agent_view read_as_agent(std::string bytes) {
  agent_view v;
  for (;;) {
    adb_sync_reply r;
    if (parse_adb_sync_reply(bytes, 0xffff, r) != adb_sync_parse::done) {
      return v;
    }
    if (r.what == adb_sync_reply::kind::data) {
      v.file.append(r.payload);
    } else if (r.what == adb_sync_reply::kind::done) {
      v.done = true;
    } else {
      v.fail = std::string(r.payload);
    }
    bytes.erase(0, r.consumed);
    if (v.done || !v.fail.empty()) {
      return v;
    }
  }
}

// Feeds `answer` in reads of `read` bytes until `stop` bytes went (then the stream breaks) or the
// answer ended; what the agent got is appended to `agent`.
resumable_pull::step feed(resumable_pull& p, const std::string& answer, std::size_t read,
                          std::size_t stop, std::string& agent) {
  std::string from_adb;
  auto step = resumable_pull::step::more;
  for (std::size_t at = 0; at < std::min(stop, answer.size()) && step == resumable_pull::step::more;
       at += read) {
    from_adb += answer.substr(at, std::min(read, std::min(stop, answer.size()) - at));
    step = p.take(from_adb, agent);
  }
  return step;
}

TEST(resumable_pull, an_unbroken_answer_passes_as_adb_sent_it) {
  const auto file = file_of(200 * 1024 + 3);
  const auto answer = answer_of(file);
  resumable_pull p;
  std::string agent;
  EXPECT_EQ(feed(p, answer, 1000, answer.size(), agent), resumable_pull::step::done);
  EXPECT_EQ(agent, answer);  // byte for byte: the same pieces
  EXPECT_EQ(p.delivered(), file.size());
}

TEST(resumable_pull, a_break_inside_a_piece_and_another_inside_the_next_answer_give_the_file_once) {
  const auto file = file_of(300 * 1024 + 17);
  const auto answer = answer_of(file);
  resumable_pull p;
  std::string agent;
  // The first answer breaks inside its third piece: the two whole pieces went, the third did not.
  ASSERT_EQ(feed(p, answer, 4096, 2 * (8 + 65536) + 100, agent), resumable_pull::step::more);
  EXPECT_EQ(p.delivered(), 2u * 65536);
  EXPECT_EQ(read_as_agent(agent).file, file.substr(0, 2 * 65536));
  // The second read (other piece sizes: another transport) breaks again.
  p.restart();
  const auto second = answer_of(file, 50000);
  ASSERT_EQ(feed(p, second, 7000, 4 * (8 + 50000) + 9, agent), resumable_pull::step::more);
  EXPECT_EQ(p.delivered(), 4u * 50000);
  // The third goes to the end.
  p.restart();
  EXPECT_EQ(feed(p, answer, 65536, answer.size(), agent), resumable_pull::step::done);
  const auto seen = read_as_agent(agent);
  EXPECT_TRUE(seen.done);
  EXPECT_EQ(seen.file, file);
  EXPECT_EQ(p.restarts(), 2u);
}

TEST(resumable_pull, a_file_that_changed_between_the_reads_is_refused_not_spliced) {
  const auto file = file_of(200 * 1024);
  const auto answer = answer_of(file);
  resumable_pull p;
  std::string agent;
  ASSERT_EQ(feed(p, answer, 65536 + 8, 65536 + 8, agent), resumable_pull::step::more);
  p.restart();
  // A late screencap rewrote it: same size, other bytes (only the last byte of the known part
  // differs, so the check is over all of it).
  auto changed = file;
  changed[65535] = static_cast<char>(changed[65535] ^ 1);
  std::string after;
  EXPECT_EQ(feed(p, answer_of(changed), 1 << 20, 1 << 30, after), resumable_pull::step::refused);
  const auto seen = read_as_agent(agent + after);
  EXPECT_FALSE(seen.done);
  EXPECT_NE(seen.fail.find("changed"), std::string::npos) << seen.fail;
  EXPECT_EQ(seen.file, file.substr(0, 65536));  // nothing of the new file went
}

TEST(resumable_pull, a_file_shorter_than_what_the_agent_has_is_refused) {
  const auto file = file_of(200 * 1024);
  resumable_pull p;
  std::string agent;
  ASSERT_EQ(feed(p, answer_of(file), 1 << 20, 2 * (65536 + 8), agent), resumable_pull::step::more);
  p.restart();
  EXPECT_EQ(feed(p, answer_of(file.substr(0, 65536)), 1 << 20, 1 << 30, agent),
            resumable_pull::step::refused);
  EXPECT_NE(read_as_agent(agent).fail.find("shorter"), std::string::npos);
}

TEST(resumable_pull, adbs_own_refusal_passes_as_it_is_and_garbage_is_refused) {
  {
    resumable_pull p;
    std::string from_adb = adb_sync_fail("No such file or directory") + "NEXT";
    std::string agent;
    EXPECT_EQ(p.take(from_adb, agent), resumable_pull::step::done);
    EXPECT_EQ(agent, adb_sync_fail("No such file or directory"));
    EXPECT_EQ(from_adb, "NEXT");  // what came after the answer is not the pull's
  }
  {
    resumable_pull p;
    std::string from_adb = "HTTP/1.1 200 OK\r\n\r\n";
    std::string agent;
    EXPECT_EQ(p.take(from_adb, agent), resumable_pull::step::refused);
    EXPECT_NE(read_as_agent(agent).fail.find("not the sync protocol"), std::string::npos);
  }
  {
    // A DATA piece longer than adb's limit is not waited for.
    resumable_pull p;
    std::string from_adb = "DATA";
    from_adb += std::string("\x01\x00\x01\x00", 4);  // 65,537
    std::string agent;
    EXPECT_EQ(p.take(from_adb, agent), resumable_pull::step::refused);
  }
}

}  // namespace
}  // namespace nines::core
