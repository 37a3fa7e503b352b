#include "core/http/chunked_decoder.hpp"

#include <gtest/gtest.h>

#include <string>

namespace nines::core {
namespace {

using namespace std::string_literals;

struct decoded {
  std::string body;
  bool done = false;
  chunked_problem problem = chunked_problem::none;
  std::size_t consumed = 0;  // of the whole input
};

// Feeds `in` in pieces of `piece` bytes (the decoder sees each piece once, like socket reads).
decoded decode(std::string_view in, std::size_t piece = 1 << 20, std::size_t max_meta = 64,
               std::uint64_t max_body = 1 << 20) {
  chunked_decoder d(max_meta, max_body);
  decoded out;
  std::string pending;
  std::size_t offered = 0;
  while (!d.done() && !d.failed()) {
    if (pending.empty()) {
      if (offered >= in.size()) {
        break;
      }
      pending = std::string(in.substr(offered, piece));
      offered += pending.size();
    }
    const auto step = d.next(pending);
    out.body.append(step.data);
    out.consumed += step.consumed;
    pending.erase(0, step.consumed);
    if (step.consumed == 0 && !d.done() && !d.failed()) {
      break;  // needs more than this piece: the test gives whole pieces only
    }
  }
  out.done = d.done();
  out.problem = d.problem();
  return out;
}

TEST(chunked_decoder, decodes_whatever_the_split) {
  const std::string wire = "5\r\nhello\r\n7;ext=1;q=\"a b\"\r\n, world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
  for (std::size_t piece = 1; piece <= wire.size(); ++piece) {
    const auto r = decode(wire, piece);
    EXPECT_TRUE(r.done) << piece;
    EXPECT_EQ(r.body, "hello, world") << piece;
    EXPECT_EQ(r.consumed, wire.size() - 4) << "the bytes after the body are left alone";
  }
}

TEST(chunked_decoder, upper_and_lower_hex_and_leading_zeros) {
  const auto r = decode("00A\r\n0123456789\r\n0000\r\n\r\n");
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.body, "0123456789");
  const auto big = decode("1F\r\n" + std::string(31, 'x') + "\r\n0\r\n\r\n");
  EXPECT_EQ(big.body.size(), 31U);
}

TEST(chunked_decoder, refuses_each_malformation) {
  const std::pair<std::string, chunked_problem> cases[] = {
      {"x\r\n", chunked_problem::bad_size},
      {"\r\n", chunked_problem::bad_size},
      {"-1\r\n", chunked_problem::bad_size},
      {"0x5\r\n", chunked_problem::bad_size},
      {"5 \r\nhello\r\n0\r\n\r\n", chunked_problem::bad_size},
      {"5 ;x\r\nhello\r\n0\r\n\r\n", chunked_problem::bad_size},
      {"11111111111111111\r\n", chunked_problem::bad_size},  // 17 digits
      {"5\nhello\r\n0\r\n\r\n", chunked_problem::bad_line_ending},
      {"5\rhello\r\n0\r\n\r\n", chunked_problem::bad_line_ending},
      {"5\r\nhelloX\r\n0\r\n\r\n", chunked_problem::bad_line_ending},
      {"5\r\nhello\n0\r\n\r\n", chunked_problem::bad_line_ending},
      {"5;a\nb\r\nhello\r\n0\r\n\r\n", chunked_problem::bad_line_ending},
      {"5;a\x01\r\nhello\r\n0\r\n\r\n", chunked_problem::bad_extension},
      {"0\r\n folded: x\r\n\r\n", chunked_problem::bad_trailer},
      {"0\r\nNo-Colon\r\n\r\n", chunked_problem::bad_trailer},
      {"0\r\nBad Name: x\r\n\r\n", chunked_problem::bad_trailer},
      {"0\r\nX: a\x01\r\n\r\n", chunked_problem::bad_trailer},
      {"0\r\nX: a\n\r\n", chunked_problem::bad_line_ending},
      {"0\r\n\n", chunked_problem::bad_line_ending},
  };
  for (const auto& [wire, problem] : cases) {
    const auto r = decode(wire);
    EXPECT_FALSE(r.done) << wire;
    EXPECT_EQ(r.problem, problem) << wire;
  }
}

// An unterminated extension or an endless trailer is cut at the bound, never buffered.
TEST(chunked_decoder, extensions_and_trailers_share_one_small_bound) {
  const auto ext = decode("1;" + std::string(100, 'e'), 7, 64);
  EXPECT_EQ(ext.problem, chunked_problem::meta_too_large);
  EXPECT_LT(ext.consumed, 70U);
  const auto trailer = decode("0\r\nX: " + std::string(100, 't') + "\r\n\r\n", 1 << 20, 64);
  EXPECT_EQ(trailer.problem, chunked_problem::meta_too_large);
  // 40 bytes of extensions plus 40 of trailers: together over 64.
  const auto both = decode("1;" + std::string(39, 'e') + "\r\na\r\n0\r\nX: " + std::string(36, 't') +
                           "\r\n\r\n", 1 << 20, 64);
  EXPECT_EQ(both.problem, chunked_problem::meta_too_large);
  const auto fits = decode("1;" + std::string(20, 'e') + "\r\na\r\n0\r\nX: " + std::string(20, 't') +
                           "\r\n\r\n", 1 << 20, 64);
  EXPECT_TRUE(fits.done);
  EXPECT_EQ(fits.body, "a");
}

TEST(chunked_decoder, the_body_bound_is_checked_before_the_data_arrives) {
  chunked_decoder d(64, 10);
  const auto step = d.next("b\r\n");  // 11 bytes declared, 10 allowed
  EXPECT_EQ(d.problem(), chunked_problem::body_too_large);
  EXPECT_TRUE(step.data.empty());
  const auto ok = decode("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 1 << 20, 64, 10);
  EXPECT_TRUE(ok.done);
  const auto over = decode("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 1 << 20, 64, 10);
  EXPECT_EQ(over.problem, chunked_problem::body_too_large);
}

TEST(chunked_decoder, data_is_a_view_into_the_input) {
  chunked_decoder d(64, 1000);
  const std::string wire = "3\r\nabc\r\n";
  auto s = d.next(wire);
  EXPECT_EQ(s.data, "abc");
  EXPECT_EQ(s.data.data(), wire.data() + 3);
}

}  // namespace
}  // namespace nines::core
