#include "tools/fake_adb_cli.hpp"

#include <fmt/format.h>

#include <iostream>
#include <map>
#include <sstream>

#include "tools/fake_adb_server.hpp"

namespace nines::tools {

int run_fake_adb(const fake_adb_options& o) {
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
    if (verb == "mode" && modes.contains(mode) && !serial.empty()) {
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

}  // namespace nines::tools
