#pragma once
// `nines fake-adb`: the fake adb server (fake_adb_server.hpp) as a process, for benchmarks of the
// device keeper: N synthetic phones, each answering probes; standard input takes one command a
// line, so that a script can inject faults:
//   mode SERIAL ok|silent|hang|offline|unauthorized
//   remove SERIAL
// It prints "nines fake-adb listening on 127.0.0.1:PORT with N devices" once it listens, and
// "mode SERIAL MODE" after each command it applied.

#include <cstdint>
#include <string>

namespace nines::tools {

struct fake_adb_options {
  std::uint16_t port = 0;
  unsigned devices = 10;
  std::string prefix = "fake-";
};

int run_fake_adb(const fake_adb_options& options);

}  // namespace nines::tools
