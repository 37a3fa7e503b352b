#pragma once
// An agent's ADB commands, spoken to an adb server's host protocol (or to the keeper's ADB proxy,
// which speaks it too) as `adb -s SERIAL shell CMD` and `adb -s SERIAL pull PATH` do, for the
// agent-loop simulator: one connection per command, host:transport:SERIAL first, then shell:CMD
// (the output until the server closes) or sync: with RECV (DATA pieces until DONE, then QUIT).
// Blocking, each command under one deadline for its whole course; never throws.
//
// Threading: each call is independent; call from any thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace nines::tools {

struct adb_call_result {
  bool ok = false;
  std::string output;  // what the command printed, or the file pulled
  std::string error;   // why it failed: adb's FAIL words (printable), or what broke
};

// `command` and `serial` must be printable ASCII (the host protocol's request is); output longer
// than `max_output` fails the call.
adb_call_result adb_shell(std::uint16_t port, const std::string& serial, const std::string& command,
                          std::chrono::milliseconds timeout, std::size_t max_output = 1 << 20);
adb_call_result adb_pull(std::uint16_t port, const std::string& serial, const std::string& path,
                         std::chrono::milliseconds timeout, std::size_t max_bytes);

}  // namespace nines::tools
