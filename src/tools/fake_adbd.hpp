#pragma once
// A phone's adbd, as the real adb server sees one over TCP (`adb connect HOST:PORT`), for tests
// and benchmarks that drive Debian's own adb without phones. It speaks the ADB transport
// (core/devices/adb_transport_wire.hpp) as a device with no special features (no shell_v2, no
// stat_v2), so that the server uses the plain forms:
//
//   shell: and exec:   "echo WORDS" answers WORDS; "screencap -p [PATH]" makes a screenshot (to
//                      PATH, or to the output); "input tap X Y" is recorded; "rm [-f] PATH";
//                      anything else answers "CMD: not found"
//   sync:              STAT, RECV (pull) of what screencap wrote, QUIT
//
// A screenshot is `screenshot_bytes` of PNG-signed filler, different for each capture (the n-th
// is what `screenshot(n)` gives), not a decodable image.
//
// Modes, switchable at any time: ok; unauthorized (an AUTH token for every key, never accepted:
// adb lists the phone "unauthorized"); silent (reads everything, answers nothing: a link that
// died without a reset, as far as adb can tell); hang (commands are confirmed and never finish:
// a zombie). crash() closes everything at once (the phone died); reboot() listens again.
//
// Threading: its own thread; every public function may be called from any thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace nines::tools {

class fake_adbd {
 public:
  enum class mode { ok, unauthorized, silent, hang };

  // Listens on `address`:`port` (0: any free port).
  explicit fake_adbd(const std::string& address = "127.0.0.1", std::uint16_t port = 0,
                     std::size_t screenshot_bytes = 2 * 1024 * 1024);
  ~fake_adbd();
  fake_adbd(const fake_adbd&) = delete;
  fake_adbd& operator=(const fake_adbd&) = delete;

  std::uint16_t port() const;
  void set_mode(mode m);

  // The n-th screenshot's bytes (n from 1), as screencap writes it.
  std::string screenshot(std::uint64_t n) const;

  // How many of a kind happened: "connect" (a CNXN answered), "auth" (AUTH messages read),
  // "shell:WORD" (a command by its first word), "pull" (a RECV answered in full), "pull_cut", "lost",
  // "tap".
  int count(const std::string& kind) const;
  // The taps so far ("X Y"), the last 4,096.
  std::vector<std::string> taps() const;
  // Called with "X Y" on the phone's thread for each tap as it lands, before the command ends.
  void on_tap(std::function<void(const std::string&)> listener);

  void crash();
  void reboot();
  // Each shell command goes unanswered (its OPEN neither confirmed nor refused) with this
  // probability: a lossy link as a probe sees it (random, from `seed`). Counted as "lost".
  void set_loss(double probability, std::uint64_t seed = 1);
  // The next pull's answer stops after `after_bytes` of the sync stream (DATA heads included, so
  // it may stop inside a piece), and once adb has acknowledged them the phone crashes: a link
  // that died half-way through a pull. Counted as "pull_cut".
  void cut_next_pull(std::size_t after_bytes);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace nines::tools
