// Which phone an agent's adb request is addressed to, read as adb reads it: what the ADB proxy
// holds for, and what it forwards at once.

#include <gtest/gtest.h>

#include "devices/adb_proxy.hpp"

namespace nines::devices {
namespace {

TEST(adb_proxy_request, the_serial_of_each_kind_of_device_request) {
  EXPECT_EQ(serial_of_request("host:transport:R58M123ABC"), "R58M123ABC");
  EXPECT_EQ(serial_of_request("host:tport:serial:emulator-5554"), "emulator-5554");
  EXPECT_EQ(serial_of_request("host:transport:192.168.1.20:5555"), "192.168.1.20:5555");
  EXPECT_EQ(serial_of_request("host-serial:R58M123ABC:get-state"), "R58M123ABC");
  // A network serial keeps its port; the request after it may hold colons of its own.
  EXPECT_EQ(serial_of_request("host-serial:192.168.1.20:5555:get-state"), "192.168.1.20:5555");
  EXPECT_EQ(serial_of_request("host-serial:192.168.1.20:5555:forward:tcp:5000;tcp:6000"),
            "192.168.1.20:5555");
  EXPECT_EQ(serial_of_request("host-serial:R58M:forward:tcp:5000;tcp:6000"), "R58M");
}

TEST(adb_proxy_request, requests_that_name_no_phone_or_a_malformed_one_are_not_held) {
  EXPECT_FALSE(serial_of_request("host:version"));
  EXPECT_FALSE(serial_of_request("host:devices-l"));
  EXPECT_FALSE(serial_of_request("host:transport-any"));
  EXPECT_FALSE(serial_of_request("host:tport:any"));
  EXPECT_FALSE(serial_of_request("host:transport:"));
  EXPECT_FALSE(serial_of_request("host:transport:has space"));
  EXPECT_FALSE(serial_of_request(std::string("host:transport:a\x01", 17)));
  EXPECT_FALSE(serial_of_request("host-serial:nocolon"));
  EXPECT_FALSE(serial_of_request("shell:echo hi"));
}

}  // namespace
}  // namespace nines::devices
