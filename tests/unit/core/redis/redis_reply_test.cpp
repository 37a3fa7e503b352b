// Redis replies read through hiredis's reader into nines's bounded tree, and commands framed by
// hiredis's formatter (core/redis/redis_reply.hpp): every kind of reply, replies split at every
// byte, pipelines, the bounds a hostile server meets, and the Sentinel and ROLE answers.

#include "core/redis/redis_reply.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace nines::core {
namespace {

using kind = redis_reply::kind;
using namespace std::string_literals;

std::vector<redis_reply> read_all(redis_reply_reader& reader, std::string_view bytes,
                                  std::size_t piece) {
  std::vector<redis_reply> out;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    EXPECT_TRUE(reader.feed(bytes.substr(at, piece))) << reader.problem();
    while (auto r = reader.next()) {
      out.push_back(std::move(*r));
    }
  }
  return out;
}

TEST(redis_reply, every_kind_is_read_whole_however_the_bytes_are_split) {
  const std::string bytes =
      "+OK\r\n-WRONGTYPE Operation against a key\r\n:-42\r\n$5\r\nhe\0lo\r\n$-1\r\n*-1\r\n"
      "*3\r\n$6\r\nmaster\r\n:3004\r\n*1\r\n*3\r\n$9\r\n127.0.0.1\r\n$4\r\n6381\r\n$1\r\n0\r\n"
      "*0\r\n"s;
  for (std::size_t piece = 1; piece <= bytes.size(); ++piece) {
    redis_reply_reader reader;
    const auto got = read_all(reader, bytes, piece);
    ASSERT_EQ(got.size(), 8u) << "in pieces of " << piece;
    EXPECT_TRUE(got[0].is_status("OK"));
    EXPECT_TRUE(got[1].is_error());
    EXPECT_EQ(got[1].text, "WRONGTYPE Operation against a key");
    EXPECT_EQ(got[2].type, kind::integer);
    EXPECT_EQ(got[2].integer, -42);
    EXPECT_EQ(got[3].type, kind::string);
    EXPECT_EQ(got[3].text, std::string("he\0lo", 5));  // binary-safe
    EXPECT_EQ(got[4].type, kind::nil);
    EXPECT_EQ(got[5].type, kind::nil);
    ASSERT_EQ(got[6].type, kind::array);
    EXPECT_EQ(redis_role(got[6]), "master");
    ASSERT_EQ(got[6].elements.size(), 3u);
    EXPECT_EQ(got[6].elements[1].integer, 3004);
    EXPECT_EQ(got[6].elements[2].elements.at(0).elements.at(1).text, "6381");
    EXPECT_EQ(got[7].type, kind::array);
    EXPECT_TRUE(got[7].elements.empty());
    EXPECT_FALSE(reader.broken());
  }
}

TEST(redis_reply, a_command_framed_is_read_back_as_its_words) {
  std::string wire;
  const std::string binary("a\r\nb\0c", 6);
  ASSERT_TRUE(append_redis_command(wire, {"XADD", "{s:abc}:events", "17-0", "e", binary}));
  ASSERT_TRUE(append_redis_command(wire, {"PING"}));
  EXPECT_EQ(wire.substr(0, 4), "*5\r\n");
  redis_reply_reader reader;
  const auto got = read_all(reader, wire, wire.size());
  ASSERT_EQ(got.size(), 2u);
  ASSERT_EQ(got[0].elements.size(), 5u);
  EXPECT_EQ(got[0].elements[1].text, "{s:abc}:events");
  EXPECT_EQ(got[0].elements[4].text, binary);
  EXPECT_EQ(got[1].elements.at(0).text, "PING");
  // Nothing to frame: refused, the wire unchanged.
  const auto before = wire;
  EXPECT_FALSE(append_redis_command(wire, std::span<const std::string_view>{}));
  EXPECT_EQ(wire, before);
}

TEST(redis_reply, a_reply_past_the_bounds_breaks_the_reader_for_good) {
  const redis_reader_limits limits{1024, 8};
  {
    // A bulk string announced larger than the bound, its bytes coming: refused once buffered
    // bytes pass the bound, not when 2^33 bytes have been held.
    redis_reply_reader reader(limits);
    EXPECT_TRUE(reader.feed("$8589934592\r\n"));
    EXPECT_FALSE(reader.next());
    EXPECT_FALSE(reader.broken());
    EXPECT_FALSE(reader.feed(std::string(2048, 'x')));
    EXPECT_TRUE(reader.broken());
    EXPECT_NE(reader.problem().find("larger than the bound"), std::string::npos)
        << reader.problem();
  }
  {
    // An array of 2^31-1 elements: refused before anything is allocated for it.
    redis_reply_reader reader(limits);
    EXPECT_TRUE(reader.feed("*2147483647\r\n"));
    EXPECT_FALSE(reader.next());
    EXPECT_TRUE(reader.broken());
    EXPECT_NE(reader.problem().find("array elements"), std::string::npos) << reader.problem();
    // Broken for good: a valid reply after it is not read (it would be out of step).
    EXPECT_FALSE(reader.feed("+OK\r\n"));
    EXPECT_FALSE(reader.next());
  }
  {
    // Elements count over the whole reply, also when it arrives in pieces.
    redis_reply_reader reader(limits);
    const std::string nested = "*2\r\n*5\r\n:1\r\n:2\r\n:3\r\n:4\r\n:5\r\n*5\r\n:1\r\n";
    for (const char c : nested) {
      reader.feed(std::string_view(&c, 1));
      EXPECT_FALSE(reader.next());
    }
    EXPECT_TRUE(reader.broken());
  }
  {
    // The bounds are per reply: many small replies in a row are fine.
    redis_reply_reader reader(limits);
    std::string many;
    for (int i = 0; i < 100; ++i) {
      many += "*4\r\n$100\r\n" + std::string(100, 'y') + "\r\n:1\r\n:2\r\n:3\r\n";
    }
    EXPECT_EQ(read_all(reader, many, 7).size(), 100u);
    EXPECT_FALSE(reader.broken());
  }
}

// (hiredis 0.14 reads a malformed number, ":12a", as -1 rather than refusing it: every caller
// checks a reply's shape before it uses it.)
TEST(redis_reply, what_is_not_redis_breaks_the_reader) {
  for (const std::string bad : {"HTTP/1.1 200 OK\r\n", "*-2\r\n",
                                "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n"}) {
    redis_reply_reader reader;
    reader.feed(bad);
    while (reader.next()) {
    }
    EXPECT_TRUE(reader.broken()) << bad;
    EXPECT_NE(reader.problem().find("Redis reply"), std::string::npos) << reader.problem();
  }
}

TEST(redis_reply, a_sentinels_address_is_taken_only_when_it_is_one) {
  auto array_of = [](std::vector<std::string> words) {
    redis_reply r;
    r.type = kind::array;
    for (auto& w : words) {
      redis_reply e;
      e.type = kind::string;
      e.text = std::move(w);
      r.elements.push_back(std::move(e));
    }
    return r;
  };
  const auto ok = redis_master_address(array_of({"127.78.1.1", "6380"}));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->host, "127.78.1.1");
  EXPECT_EQ(ok->port, 6380);
  EXPECT_TRUE(redis_master_address(array_of({"::1", "6379"})));
  EXPECT_FALSE(redis_master_address(redis_reply{}));  // nil: the name is unknown
  EXPECT_FALSE(redis_master_address(array_of({"127.0.0.1"})));
  EXPECT_FALSE(redis_master_address(array_of({"127.0.0.1", "6380", "x"})));
  EXPECT_FALSE(redis_master_address(array_of({"127.0.0.1", "0"})));
  EXPECT_FALSE(redis_master_address(array_of({"127.0.0.1", "65536"})));
  EXPECT_FALSE(redis_master_address(array_of({"127.0.0.1", "06380"})));
  EXPECT_FALSE(redis_master_address(array_of({"127.0.0.1", "6380 "})));
  EXPECT_FALSE(redis_master_address(array_of({"", "6380"})));
  EXPECT_FALSE(redis_master_address(array_of({"evil host\r\n", "6380"})));

  EXPECT_EQ(redis_role(array_of({"slave", "127.0.0.1", "6380"})), "slave");
  EXPECT_EQ(redis_role(array_of({"primary"})), "");
  EXPECT_EQ(redis_role(redis_reply{}), "");
}

TEST(redis_reply, a_reply_is_described_printably_and_cut) {
  redis_reply r;
  r.type = kind::error;
  r.text = "ERR \x01\x7f" + std::string(500, 'z');
  const auto d = describe_redis_reply(r, 40);
  EXPECT_EQ(d.size(), 40u);
  EXPECT_EQ(d.substr(0, 13), "error: ERR ??");
}

}  // namespace
}  // namespace nines::core
