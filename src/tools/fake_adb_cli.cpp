#include "tools/fake_adb_cli.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <map>
#include <sstream>

#include "core/devices/adb_wire.hpp"
#include "tools/fake_adb_server.hpp"
#include "tools/fake_adbd.hpp"

namespace nines::tools {

int run_fake_adb(const fake_adb_options& o) {
  // "PREFIX0000\tdevice\n" a phone: the list must fit one block of the host protocol.
  if (std::size_t{o.devices} * (o.prefix.size() + 12) > core::adb_max_list_bytes ||
      !core::valid_adb_serial(o.prefix + "0000")) {
    std::cerr << fmt::format(
        "nines fake-adb: {} phones with a {}-byte prefix do not fit adb's {}-byte list, or the "
        "prefix is not a serial's\n",
        o.devices, o.prefix.size(), core::adb_max_list_bytes);
    return 2;
  }
  fake_adb_server server(o.port);
  for (unsigned i = 0; i < o.devices; ++i) {
    server.set_device(fmt::format("{}{:04}", o.prefix, i), fake_adb_server::mode::ok);
  }
  std::cout << fmt::format("nines fake-adb listening on 127.0.0.1:{} with {} devices",
                           server.port(), o.devices)
            << std::endl;
  const std::map<std::string, fake_adb_server::mode> modes{
      {"ok", fake_adb_server::mode::ok},
      {"silent", fake_adb_server::mode::silent},
      {"hang", fake_adb_server::mode::hang},
      {"offline", fake_adb_server::mode::offline},
      {"unauthorized", fake_adb_server::mode::unauthorized}};
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string verb;
    std::string serial;
    std::string mode;
    words >> verb >> serial >> mode;
    if (verb == "loss") {
      // "loss P": every phone's probes go unanswered with probability P (0 to 1).
      char* end = nullptr;
      const double p = std::strtod(serial.c_str(), &end);
      if (end == serial.c_str() || *end != '\0' || !(p >= 0 && p <= 1)) {
        std::cerr << "nines fake-adb: loss wants a probability from 0 to 1" << std::endl;
        continue;
      }
      server.set_loss(p);
      std::cout << "loss " << p << std::endl;
    } else if (verb == "mode" && modes.contains(mode) && !serial.empty()) {
      server.set_device(serial, modes.at(mode));
      std::cout << "mode " << serial << " " << mode << std::endl;
    } else if (verb == "remove" && !serial.empty()) {
      server.remove_device(serial);
      std::cout << "removed " << serial << std::endl;
    } else if (!verb.empty()) {
      std::cerr << "nines fake-adb: not a command: " << line.substr(0, 200) << std::endl;
    }
  }
  return 0;  // standard input closed: the script is done
}

int run_fake_adbd(const fake_adbd_options& o) {
  const std::map<std::string, fake_adbd::mode> modes{{"ok", fake_adbd::mode::ok},
                                                     {"unauthorized", fake_adbd::mode::unauthorized},
                                                     {"silent", fake_adbd::mode::silent},
                                                     {"hang", fake_adbd::mode::hang}};
  const auto colon = o.listen.rfind(':');
  unsigned port = 0;
  const bool port_ok =
      colon != std::string::npos &&
      std::sscanf(o.listen.c_str() + colon + 1, "%5u", &port) == 1 && port <= 65535;
  if (!port_ok || !modes.contains(o.mode)) {
    std::cerr << "nines fake-adbd: --listen wants IP:PORT\n";
    return 2;
  }
  std::optional<fake_adbd> phone;
  try {
    phone.emplace(o.listen.substr(0, colon), static_cast<std::uint16_t>(port), o.screenshot_bytes);
  } catch (const std::exception& e) {
    std::cerr << "nines fake-adbd: cannot listen on " << o.listen << ": " << e.what() << "\n";
    return 1;
  }
  phone->set_mode(modes.at(o.mode));
  std::cout << fmt::format("nines fake-adbd listening on {}:{}", o.listen.substr(0, colon),
                           phone->port())
            << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string verb;
    std::string mode;
    words >> verb >> mode;
    if (verb == "mode" && modes.contains(mode)) {
      phone->set_mode(modes.at(mode));
      std::cout << "mode " << mode << std::endl;
    } else if (verb == "crash") {
      phone->crash();
      std::cout << "crashed" << std::endl;
    } else if (verb == "reboot") {
      phone->reboot();
      std::cout << "rebooted" << std::endl;
    } else if (!verb.empty()) {
      std::cerr << "nines fake-adbd: not a command: " << line.substr(0, 200) << std::endl;
    }
  }
  return 0;
}

}  // namespace nines::tools
