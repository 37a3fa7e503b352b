// The ADB host protocol's framing and device lists, as the adb server writes them and as a hostile
// one might.

#include "core/devices/adb_wire.hpp"

#include <gtest/gtest.h>

namespace nines::core {
namespace {

TEST(adb_wire, a_request_is_its_length_in_four_hex_digits_then_the_service) {
  EXPECT_EQ(adb_request("host:version"), "000chost:version");
  EXPECT_EQ(adb_request("shell:echo nines"), "0010shell:echo nines");
  const std::string long_service(0x1ab, 'x');
  EXPECT_EQ(adb_request(long_service)->substr(0, 4), "01ab");
}

TEST(adb_wire, a_request_that_cannot_be_sent_safely_is_refused) {
  EXPECT_FALSE(adb_request(""));
  EXPECT_FALSE(adb_request(std::string(adb_max_service_bytes + 1, 'x')));
  EXPECT_FALSE(adb_request("shell:echo\nreboot"));
  EXPECT_FALSE(adb_request(std::string("host:connect:1.2.3.4\0:5555", 26)));
  EXPECT_FALSE(adb_request("host:connect:\x7f"));
}

TEST(adb_wire, lengths_are_exactly_four_hex_digits) {
  EXPECT_EQ(parse_adb_length("001a"), 26u);
  EXPECT_EQ(parse_adb_length("FFFF"), 0xffffu);
  EXPECT_EQ(parse_adb_length("0000"), 0u);
  EXPECT_FALSE(parse_adb_length("00g1"));
  EXPECT_FALSE(parse_adb_length("01a"));
  EXPECT_FALSE(parse_adb_length("+01a"));
  EXPECT_FALSE(parse_adb_length(" 01a"));
}

TEST(adb_wire, statuses) {
  EXPECT_EQ(parse_adb_status("OKAY"), adb_status::okay);
  EXPECT_EQ(parse_adb_status("FAIL"), adb_status::fail);
  EXPECT_EQ(parse_adb_status("okay"), adb_status::bad);
  EXPECT_EQ(parse_adb_status("OKA"), adb_status::bad);
}

TEST(adb_wire, a_long_device_list_as_adb_writes_it) {
  const auto list = parse_device_list(
      "emulator-5554          device product:sdk_gphone64 model:Pixel_7 device:emu64xa "
      "transport_id:1\n"
      "192.168.1.20:5555      offline transport_id:2\n"
      "R58M123ABC             unauthorized usb:1-1 transport_id:3\n"
      "0123456789ABCDEF       no permissions (user in plugdev group; are your udev rules "
      "wrong?); see [http://developer.android.com/tools/device.html] usb:1-2 transport_id:4\n",
      500);
  ASSERT_TRUE(list.problems.empty()) << list.problems.front();
  ASSERT_EQ(list.devices.size(), 4u);
  EXPECT_EQ(list.devices[0].serial, "emulator-5554");
  EXPECT_EQ(list.devices[0].listing, adb_listing::device);
  EXPECT_EQ(list.devices[0].model, "Pixel_7");
  EXPECT_EQ(list.devices[0].transport_id, "1");
  EXPECT_EQ(list.devices[1].listing, adb_listing::offline);
  EXPECT_EQ(list.devices[2].listing, adb_listing::unauthorized);
  EXPECT_EQ(list.devices[3].listing, adb_listing::other);
  EXPECT_EQ(list.devices[3].state.substr(0, 14), "no permissions");
}

TEST(adb_wire, the_short_list_uses_tabs_and_may_end_lines_with_crlf) {
  const auto list = parse_device_list("abc\tdevice\r\ndef\tconnecting\r\n\r\n", 500);
  ASSERT_EQ(list.devices.size(), 2u);
  EXPECT_EQ(list.devices[0].listing, adb_listing::device);
  EXPECT_EQ(list.devices[1].listing, adb_listing::offline);
  EXPECT_TRUE(list.problems.empty());
}

TEST(adb_wire, malformed_lines_twice_listed_serials_and_too_many_devices_are_refused_and_said) {
  const auto list = parse_device_list(
      "lonely\n"
      "a\x01"
      "b device\n"
      "dup device\n"
      "dup offline\n"
      "x1 device\n"
      "x2 device\n",
      3);
  ASSERT_EQ(list.devices.size(), 3u);
  EXPECT_EQ(list.devices[0].serial, "dup");
  EXPECT_EQ(list.devices[0].listing, adb_listing::device);  // the first word stands
  EXPECT_EQ(list.devices[1].serial, "x1");
  EXPECT_EQ(list.devices[2].serial, "x2");
  ASSERT_EQ(list.problems.size(), 3u);
  EXPECT_EQ(list.problems[0], "line 1: not \"serial state\"");
  EXPECT_EQ(list.problems[1], "line 2: not \"serial state\"");
  EXPECT_EQ(list.problems[2], "line 4: serial listed twice");
  const auto capped = parse_device_list("a device\nb device\nc device\n", 2);
  ASSERT_EQ(capped.devices.size(), 2u);
  EXPECT_EQ(capped.problems, std::vector<std::string>{"line 3: more than 2 devices"});
}

TEST(adb_wire, network_serials_are_host_and_port) {
  const auto a = parse_network_serial("192.168.1.20:5555");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "192.168.1.20");
  EXPECT_EQ(a->port, 5555u);
  EXPECT_TRUE(parse_network_serial("phone-7.lan:5555"));
  EXPECT_FALSE(parse_network_serial("emulator-5554"));
  EXPECT_FALSE(parse_network_serial("adb-R58M._adb-tls-connect._tcp"));
  EXPECT_FALSE(parse_network_serial(":5555"));
  EXPECT_FALSE(parse_network_serial("host:"));
  EXPECT_FALSE(parse_network_serial("host:0"));
  EXPECT_FALSE(parse_network_serial("host:70000"));
  EXPECT_FALSE(parse_network_serial("host:55a5"));
  EXPECT_FALSE(parse_network_serial("ho/st:5555"));
}

}  // namespace
}  // namespace nines::core
