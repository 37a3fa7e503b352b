#include "tools/fake_adb_cli.hpp"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <vector>

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
      {"slow", fake_adb_server::mode::slow},
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
  const std::map<std::string, fake_adbd::mode> modes{
      {"ok", fake_adbd::mode::ok},
      {"unauthorized", fake_adbd::mode::unauthorized},
      {"silent", fake_adbd::mode::silent},
      {"hang", fake_adbd::mode::hang}};
  const auto colon = o.listen.rfind(':');
  unsigned port = 0;
  const bool port_ok =
      colon != std::string::npos && std::sscanf(o.listen.c_str() + colon + 1, "%5u", &port) == 1 &&
      port <= 65535 && (o.phones == 1 || (port > 0 && port + o.phones - 1 <= 65535));
  if (!port_ok || !modes.contains(o.mode) || o.phones == 0 || o.phones > fake_adbd_max_phones) {
    std::cerr << fmt::format(
        "nines fake-adbd: --listen wants IP:PORT (a fixed port with --phones above 1, PORT+N-1 "
        "at most 65535), --phones 1..{}\n",
        fake_adbd_max_phones);
    return 2;
  }
  const std::string address = o.listen.substr(0, colon);
  std::mutex print;  // taps come from every phone's thread
  std::vector<std::unique_ptr<fake_adbd>> phones;
  try {
    for (unsigned i = 0; i < o.phones; ++i) {
      const auto p = static_cast<std::uint16_t>(port == 0 ? 0 : port + i);
      phones.push_back(std::make_unique<fake_adbd>(address, p, o.screenshot_bytes));
      phones.back()->set_mode(modes.at(o.mode));
      const auto serial = fmt::format("{}:{}", address, phones.back()->port());
      phones.back()->on_tap([&print, serial](const std::string& tap) {
        std::lock_guard lock(print);
        std::cout << "tap " << serial << " " << tap << std::endl;
      });
    }
  } catch (const std::exception& e) {
    std::cerr << "nines fake-adbd: cannot listen on " << o.listen << ": " << e.what() << "\n";
    return 1;
  }
  {
    std::lock_guard lock(print);
    std::cout << fmt::format("nines fake-adbd listening on {}:{}", address, phones[0]->port());
    if (o.phones > 1) {
      std::cout << fmt::format(" and {} more", o.phones - 1);
    }
    std::cout << std::endl;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream words(line);
    std::string verb;
    std::string mode;
    words >> verb >> mode;
    std::string applied;
    if (verb == "mode" && modes.contains(mode)) {
      for (auto& phone : phones) {
        phone->set_mode(modes.at(mode));
      }
      applied = "mode " + mode;
    } else if (verb == "loss" && !mode.empty()) {
      // "loss P": every phone's shell commands go unanswered with probability P (a seed each).
      char* end = nullptr;
      const double p = std::strtod(mode.c_str(), &end);
      if (end == mode.c_str() + mode.size() && p >= 0 && p <= 1) {
        for (std::size_t i = 0; i < phones.size(); ++i) {
          phones[i]->set_loss(p, 1 + i);
        }
        applied = "loss " + mode;
      } else {
        std::cerr << "nines fake-adbd: loss wants a probability in [0, 1]" << std::endl;
      }
    } else if (verb == "crash") {
      for (auto& phone : phones) {
        phone->crash();
      }
      applied = "crashed";
    } else if (verb == "reboot") {
      for (auto& phone : phones) {
        phone->reboot();
      }
      applied = "rebooted";
    } else if (!verb.empty()) {
      std::cerr << "nines fake-adbd: not a command: " << line.substr(0, 200) << std::endl;
    }
    if (!applied.empty()) {
      std::lock_guard lock(print);
      std::cout << applied << std::endl;
    }
  }
  // Standard input closed: the phones stop before the printer they call goes.
  phones.clear();
  return 0;
}

}  // namespace nines::tools
