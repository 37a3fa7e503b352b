#pragma once
// `nines fake-adb`: the fake adb server (fake_adb_server.hpp) as a process, for benchmarks of the
// device keeper: N synthetic phones, each answering probes; standard input takes one command a
// line, so that a script can inject faults:
//   mode SERIAL ok|silent|hang|offline|unauthorized
//   remove SERIAL
//   loss P                    (every probe goes unanswered with probability P)
// It prints "nines fake-adb listening on 127.0.0.1:PORT with N devices" once it listens, and
// "mode SERIAL MODE" after each command it applied.
//
// `nines fake-adbd`: fake phones (fake_adbd.hpp) as a process, for tests whose phones live in a
// network namespace of their own: --phones N of them on PORT, PORT+1, ... (a fixed PORT then);
// standard input takes, for all of them at once:
//   mode ok|unauthorized|silent|hang
//   crash            (every connection closed, nothing listens)
//   reboot           (listens again)
//   loss P           (each shell command goes unanswered with probability P: a probe lost)
// It prints "nines fake-adbd listening on IP:PORT" (the first phone's; "... and N-1 more") once
// they listen, each command it applied, and "tap IP:PORT X Y" for every tap as it lands (the
// phone's own record, which the agent-loop simulator checks its steps against).

#include <cstdint>
#include <string>

namespace nines::tools {

struct fake_adb_options {
  std::uint16_t port = 0;
  unsigned devices = 10;
  std::string prefix = "fake-";
};

// The most phones whose short list still fits the protocol's 4 hex digits (adb_max_list_bytes) with
// the default prefix: "fake-0000\tdevice\n" is 17 bytes.
inline constexpr unsigned fake_adb_max_devices = 3000;

int run_fake_adb(const fake_adb_options& options);

struct fake_adbd_options {
  std::string listen = "127.0.0.1:0";
  std::string mode = "ok";
  std::size_t screenshot_bytes = 2 * 1024 * 1024;
  unsigned phones = 1;
};
inline constexpr unsigned fake_adbd_max_phones = 256;

int run_fake_adbd(const fake_adbd_options& options);

}  // namespace nines::tools
