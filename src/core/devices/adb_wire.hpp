#pragma once
// The ADB host protocol, as the adb server speaks it on tcp:5037 (adb's SERVICES.TXT and
// protocol.txt): what a client sends and how it reads the answers. No I/O here.
//
//   request:  4 hex digits (the service's length), then the service ("host:version",
//             "host:transport:SERIAL", "shell:echo nines", ...)
//   answer:   "OKAY", or "FAIL" + 4 hex digits + that many bytes of message
//   a list:   after OKAY, 4 hex digits + that many bytes (host:devices-l once; host:track-devices-l
//             again every time the list changes), a line per device:
//             "SERIAL<spaces>STATE[ key:value ...]"
//
// Everything read from the server is bounded and checked: a list that is too long, a line that
// is not "serial state", a serial with bytes no serial has, or a serial listed twice is reported,
// never guessed at.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nines::core {

// The longest service nines sends (a shell probe, a connect address).
inline constexpr std::size_t adb_max_service_bytes = 1024;
// The largest block the protocol can frame: 4 hex digits. The keeper follows the short list
// (host:track-devices, "serial<TAB>state", ~30 bytes a line: 2,000 phones fit).
inline constexpr std::size_t adb_max_list_bytes = 0xffff;

// The request for `service`; nullopt when it is empty, longer than adb_max_service_bytes, or holds
// a byte outside printable ASCII (nothing of a device's or an operator's text is sent unchecked).
std::optional<std::string> adb_request(std::string_view service);

// The value of 4 hex digits ("001a" → 26); nullopt for anything else.
std::optional<std::size_t> parse_adb_length(std::string_view four);

enum class adb_status { okay, fail, bad };
adb_status parse_adb_status(std::string_view four);

// A serial as adb lists it: 1-255 bytes of printable ASCII without spaces (USB serials, network
// "host:port", mDNS "adb-XXXX._adb-tls-connect._tcp").
bool valid_adb_serial(std::string_view serial);

// A network device's serial is its "host:port" (IPv4 or a name; port 1-65535): adb reconnects
// those with host:connect. nullopt for USB and mDNS serials.
struct network_address {
  std::string host;
  unsigned port = 0;
};
std::optional<network_address> parse_network_serial(std::string_view serial);

// How adb sees a device's transport (the STATE column).
enum class adb_listing {
  device,        // transport up: commands can be sent
  unauthorized,  // the phone has not accepted this host's key
  offline,       // transport known and down (also "connecting", "authorizing")
  other,         // bootloader, recovery, sideload, rescue, host, "no permissions": not usable
};
adb_listing classify_adb_state(std::string_view state);

struct listed_device {
  std::string serial;
  std::string state;  // as adb said it ("device", "offline", "no permissions", ...)
  adb_listing listing = adb_listing::other;
  std::string model;         // "model:" property, when given
  std::string transport_id;  // "transport_id:" property, when given
};

struct device_list {
  std::vector<listed_device> devices;
  std::vector<std::string> problems;  // one per line refused, with the line's number
};

// Parses one list block. Lines past `max_devices` are refused (reported), as are malformed lines
// and a serial listed twice; well-formed lines are kept.
device_list parse_device_list(std::string_view text, std::size_t max_devices);

}  // namespace nines::core
