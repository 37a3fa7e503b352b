// The ADB transport's framing, as the fake adbd of the tests reads and writes it: a message's head
// round-trips, and a head whose magic, command or length is wrong is refused; sync requests are
// cut from a stream that arrives in pieces, and a path past the bound is refused.

#include "core/devices/adb_transport_wire.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(adb_transport_wire, a_message_round_trips_with_its_checksum_and_magic) {
  const auto m = encode_adb_message(adb_cmd::wrte, 7, 9, "nines\n");
  ASSERT_EQ(m.size(), adb_transport_head_bytes + 6);
  EXPECT_EQ(m.substr(0, 4), "WRTE");  // the command word reads as its name on the wire
  const auto h = decode_adb_head(std::string_view(m).substr(0, 24), 4096);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->command, adb_cmd::wrte);
  EXPECT_EQ(h->arg0, 7u);
  EXPECT_EQ(h->arg1, 9u);
  EXPECT_EQ(h->length, 6u);
  EXPECT_EQ(h->checksum, static_cast<std::uint32_t>('n' + 'i' + 'n' + 'e' + 's' + '\n'));
  EXPECT_EQ(m.substr(24), "nines\n");
}

TEST(adb_transport_wire,
     a_head_with_a_wrong_magic_an_unknown_command_or_too_long_a_payload_is_refused) {
  const auto good = encode_adb_message(adb_cmd::open, 1, 0, "shell:echo\0");
  auto bad_magic = good.substr(0, 24);
  bad_magic[20] ^= 1;
  EXPECT_FALSE(decode_adb_head(bad_magic, 4096));
  auto unknown = encode_adb_message(0x454b4146, 1, 0).substr(0, 24);  // "FAKE", magic right
  EXPECT_FALSE(decode_adb_head(unknown, 4096));
  const auto big = encode_adb_message(adb_cmd::wrte, 1, 1, std::string(5000, 'x')).substr(0, 24);
  EXPECT_FALSE(decode_adb_head(big, 4096));
  EXPECT_TRUE(decode_adb_head(big, 5000));
  EXPECT_FALSE(decode_adb_head(good.substr(0, 23), 4096));  // a head is 24 bytes, not fewer
}

TEST(adb_transport_wire, sync_requests_are_cut_from_a_stream_in_pieces_and_a_long_path_is_refused) {
  std::string wire = "STAT";
  wire += std::string("\x0f\x00\x00\x00", 4) + "/sdcard/tmp.png";
  wire.pop_back();  // the path's last byte not here yet
  adb_sync_request r;
  EXPECT_EQ(parse_adb_sync_request(wire, 1024, r), adb_sync_parse::more);
  EXPECT_EQ(parse_adb_sync_request("STA", 1024, r), adb_sync_parse::more);
  wire += "g";
  wire += "QUIT" + std::string(4, '\0');
  ASSERT_EQ(parse_adb_sync_request(wire, 1024, r), adb_sync_parse::done);
  EXPECT_EQ(r.id, "STAT");
  EXPECT_EQ(r.path, "/sdcard/tmp.png");
  ASSERT_EQ(parse_adb_sync_request(std::string_view(wire).substr(r.consumed), 1024, r),
            adb_sync_parse::done);
  EXPECT_EQ(r.id, "QUIT");
  EXPECT_EQ(r.path, "");
  const std::string huge = "RECV" + std::string("\x01\x04\x00\x00", 4);  // a 1,025-byte path
  EXPECT_EQ(parse_adb_sync_request(huge, 1024, r), adb_sync_parse::bad);
}

TEST(adb_transport_wire, sync_answers_carry_their_lengths_little_endian) {
  EXPECT_EQ(adb_sync_data("abc"), std::string("DATA\x03\x00\x00\x00", 8) + "abc");
  EXPECT_EQ(adb_sync_done(1), std::string("DONE\x01\x00\x00\x00", 8));
  EXPECT_EQ(adb_sync_fail("no"), std::string("FAIL\x02\x00\x00\x00", 8) + "no");
  EXPECT_EQ(adb_sync_stat(0100644, 0x10203, 0),
            std::string("STAT\xa4\x81\x00\x00\x03\x02\x01\x00\x00\x00\x00\x00", 16));
}

TEST(adb_transport_wire, a_pull_reads_data_in_pieces_to_done_and_refuses_what_no_server_sends) {
  EXPECT_EQ(adb_sync_request_bytes("RECV", "/sdcard/a.png"),
            std::string("RECV\x0d\x00\x00\x00", 8) + "/sdcard/a.png");
  std::string wire = adb_sync_data("PNG!") + adb_sync_fail("gone") + adb_sync_done(7);
  adb_sync_reply r;
  EXPECT_EQ(parse_adb_sync_reply(std::string_view(wire).substr(0, 11), 64, r),
            adb_sync_parse::more);  // DATA's bytes not all there
  ASSERT_EQ(parse_adb_sync_reply(wire, 64, r), adb_sync_parse::done);
  EXPECT_EQ(r.what, adb_sync_reply::kind::data);
  EXPECT_EQ(r.payload, "PNG!");
  std::string_view rest = std::string_view(wire).substr(r.consumed);
  ASSERT_EQ(parse_adb_sync_reply(rest, 64, r), adb_sync_parse::done);
  EXPECT_EQ(r.what, adb_sync_reply::kind::fail);
  EXPECT_EQ(r.payload, "gone");
  rest = rest.substr(r.consumed);
  ASSERT_EQ(parse_adb_sync_reply(rest, 64, r), adb_sync_parse::done);
  EXPECT_EQ(r.what, adb_sync_reply::kind::done);
  EXPECT_EQ(r.consumed, 8U);
  EXPECT_EQ(parse_adb_sync_reply(adb_sync_fail(std::string(65, 'x')), 64, r),
            adb_sync_parse::bad);  // a message longer than the reader takes
  const std::string too_long = "DATA" + std::string("\x01\x00\x01\x00", 4);  // 65,537 bytes
  EXPECT_EQ(parse_adb_sync_reply(too_long, 64, r), adb_sync_parse::bad);
  EXPECT_EQ(parse_adb_sync_reply("OKAY" + std::string(4, '\0'), 64, r), adb_sync_parse::bad);
}

}  // namespace
}  // namespace nines::core
