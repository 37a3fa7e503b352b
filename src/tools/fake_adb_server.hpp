#pragma once
// A stand-in for the adb server's host protocol (tcp:5037), for tests and benchmarks of the device
// keeper without phones: synthetic devices, each answering probes as a healthy phone, a silent
// link (no answer at all), a zombie (the command accepted, never finished), or with adb's own
// refusals (unauthorized, offline, not found); network phones that host:connect lists when their
// address is reachable; and a device list as hostile as a test wants it.
//
// Speaks: host:track-devices-l (the list again on every change), host:devices-l,
// host:transport:SERIAL then shell:CMD (echo answers its arguments), host:connect:ADDR,
// host:disconnect:ADDR, host:version. Counts every request by kind.
//
// Threading: its own thread; every public function may be called from any thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace nines::tools {

class fake_adb_server {
 public:
  // slow: answers every command, 300 ms late (inside the keeper's 500 ms probe deadline).
  enum class mode { ok, silent, hang, unauthorized, offline, slow };

  // Listens on 127.0.0.1:`port` (0: any free port).
  explicit fake_adb_server(std::uint16_t port = 0);
  ~fake_adb_server();
  fake_adb_server(const fake_adb_server&) = delete;
  fake_adb_server& operator=(const fake_adb_server&) = delete;

  std::uint16_t port() const;

  // Lists `serial` (its state word follows from the mode: "device", "unauthorized", "offline").
  void set_device(const std::string& serial, mode m);
  void remove_device(const std::string& serial);
  // host:connect:ADDR succeeds (and lists ADDR as a device in `m`) while `reachable`.
  void set_connectable(const std::string& address, bool reachable, mode m = mode::ok);
  // Every shell command of a phone in mode ok goes unanswered with this probability (a lossy
  // link: random, from `seed`).
  void set_loss(double probability, std::uint64_t seed = 1);
  // sync: (after host:transport:SERIAL) is confirmed, and its first request (counted as
  // "sync:ID") answered with `raw`, as a hostile server might answer it; then nothing more. Empty:
  // sync: is refused ("closed"), as before.
  void set_sync_answer(const std::string& raw);
  // Replaces the list text sent to trackers (nullptr-free, as a hostile server might write it);
  // set_device/remove_device go back to the generated list.
  void set_raw_list(const std::string& text);

  // How many requests of a kind arrived: "track", "probe:SERIAL", "connect:ADDR",
  // "disconnect:ADDR", "sync:ID", and "service:S" for every first request S (its first 64
  // bytes).
  int count(const std::string& kind) const;
  // Every request so far, all kinds together.
  int requests() const;

  // Closes the listener and every connection (the adb server died); resume() listens again on
  // the same port.
  void pause();
  void resume();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace nines::tools
