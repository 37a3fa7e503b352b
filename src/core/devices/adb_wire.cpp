#include "core/devices/adb_wire.hpp"

#include <array>
#include <charconv>
#include <unordered_set>

namespace nines::core {
namespace {

bool printable(char c) {
  return c >= 0x21 && c <= 0x7e;
}

// The properties adb appends to a long-format line; everything between the serial and the first
// of them is the state (which may hold spaces: "no permissions (...); see [...]").
constexpr std::array<std::string_view, 6> property_keys{
    "usb:", "product:", "model:", "device:", "transport_id:", "features:"};

std::optional<std::string_view> property(std::string_view token) {
  for (auto key : property_keys) {
    if (token.substr(0, key.size()) == key) {
      return key;
    }
  }
  return std::nullopt;
}

// Splits on spaces and tabs.
std::vector<std::string_view> tokens_of(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
      ++i;
    }
    const auto start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
      ++i;
    }
    if (i > start) {
      out.push_back(line.substr(start, i - start));
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> adb_request(std::string_view service) {
  if (service.empty() || service.size() > adb_max_service_bytes) {
    return std::nullopt;
  }
  for (char c : service) {
    if (!printable(c) && c != ' ') {
      return std::nullopt;
    }
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(4, '0');
  for (int i = 3, n = static_cast<int>(service.size()); i >= 0; --i, n >>= 4) {
    out[static_cast<std::size_t>(i)] = hex[n & 0xf];
  }
  out.append(service);
  return out;
}

std::optional<std::size_t> parse_adb_length(std::string_view four) {
  if (four.size() != 4) {
    return std::nullopt;
  }
  std::size_t v = 0;
  for (char c : four) {
    int d = -1;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    }
    if (d < 0) {
      return std::nullopt;
    }
    v = v * 16 + static_cast<std::size_t>(d);
  }
  return v;
}

adb_status parse_adb_status(std::string_view four) {
  if (four == "OKAY") {
    return adb_status::okay;
  }
  if (four == "FAIL") {
    return adb_status::fail;
  }
  return adb_status::bad;
}

bool valid_adb_serial(std::string_view serial) {
  if (serial.empty() || serial.size() > 255) {
    return false;
  }
  for (char c : serial) {
    if (!printable(c)) {
      return false;
    }
  }
  return true;
}

std::optional<network_address> parse_network_serial(std::string_view serial) {
  const auto colon = serial.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= serial.size()) {
    return std::nullopt;
  }
  const auto host = serial.substr(0, colon);
  const auto port_text = serial.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535 || port_text.size() > 5) {
    return std::nullopt;
  }
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-';
    if (!ok) {
      return std::nullopt;  // "adb-XXXX._adb-tls-connect._tcp" and IPv6 literals are not ours
    }
  }
  if (host.size() > 253) {
    return std::nullopt;
  }
  return network_address{std::string(host), port};
}

adb_listing classify_adb_state(std::string_view state) {
  if (state == "device") {
    return adb_listing::device;
  }
  if (state == "unauthorized") {
    return adb_listing::unauthorized;
  }
  if (state == "offline" || state == "connecting" || state == "authorizing") {
    return adb_listing::offline;
  }
  return adb_listing::other;
}

device_list parse_device_list(std::string_view text, std::size_t max_devices) {
  device_list out;
  std::unordered_set<std::string_view> seen;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      continue;
    }
    const auto where = "line " + std::to_string(line_number) + ": ";
    bool clean = true;
    for (char c : line) {
      if (!printable(c) && c != ' ' && c != '\t') {
        clean = false;
      }
    }
    const auto tokens = tokens_of(line);
    if (!clean || tokens.size() < 2) {
      out.problems.push_back(where + "not \"serial state\"");
      continue;
    }
    if (!valid_adb_serial(tokens[0])) {
      out.problems.push_back(where + "not a serial");
      continue;
    }
    if (out.devices.size() >= max_devices) {
      out.problems.push_back(where + "more than " + std::to_string(max_devices) + " devices");
      continue;
    }
    if (!seen.insert(tokens[0]).second) {
      out.problems.push_back(where + "serial listed twice");
      continue;
    }
    listed_device d;
    d.serial = std::string(tokens[0]);
    std::size_t i = 1;
    for (; i < tokens.size() && !property(tokens[i]); ++i) {
      if (!d.state.empty()) {
        d.state += ' ';
      }
      d.state.append(tokens[i]);
    }
    for (; i < tokens.size(); ++i) {
      const auto key = property(tokens[i]);
      const auto value = key ? tokens[i].substr(key->size()) : std::string_view{};
      if (key == "model:") {
        d.model = std::string(value.substr(0, 128));
      } else if (key == "transport_id:") {
        d.transport_id = std::string(value.substr(0, 32));
      }
    }
    if (d.state.empty()) {
      out.problems.push_back(where + "no state");
      continue;
    }
    d.state.resize(std::min<std::size_t>(d.state.size(), 256));
    d.listing = classify_adb_state(d.state);
    out.devices.push_back(std::move(d));
  }
  return out;
}

}  // namespace nines::core
