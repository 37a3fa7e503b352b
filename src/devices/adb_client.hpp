#pragma once
// A client of the local adb server's host protocol (core/devices/adb_wire.hpp), as adbkit and STF
// speak it: one TCP connection per service, every read and write under a deadline (the worker's
// deadline sweep, net/deadline_sweep.hpp), nothing blocking a thread. The keeper (device_keeper)
// uses it for the device list, probes, connects and disconnects.
//
// Threading: a connection is used from the io_context that opened it.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/devices/adb_wire.hpp"
#include "core/devices/device_lifecycle.hpp"
#include "net/asio.hpp"
#include "net/deadline_sweep.hpp"
#include "net/read_buffer.hpp"

namespace nines::devices {

using net::awaitable;
using time_point = std::chrono::steady_clock::time_point;

// Where the adb server listens: a TCP address (adb's -L tcp:HOST:PORT).
struct adb_server_address {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5037;
};

// "tcp:5037", "tcp:HOST:PORT" (ANDROID_ADB_SERVER_SOCKET's forms that nines speaks); nullopt
// for anything else (localabstract:, a port out of range).
std::optional<adb_server_address> parse_adb_server_socket(std::string_view spec);

// A TCP connection to the adb server within `deadline`; a closed socket and `why` on failure.
awaitable<net::tcp::socket> connect_to_server(const adb_server_address& server, time_point deadline,
                                              std::string& why);

// adb's words, fit for a log line and a JSON string: at most 512 bytes, every byte outside
// printable ASCII replaced by '?'.
std::string printable_words(std::string_view words);

// What one request to the adb server got.
struct adb_reply {
  bool okay = false;
  bool timed_out = false;
  bool refused = false;  // the server said FAIL (else: it broke, or said nothing in time)
  std::string failure;   // the server's FAIL message (printable_words), or what broke (words)
};

class adb_connection {
 public:
  // Connects to the server within `deadline`; nullptr and `why` on failure.
  static awaitable<std::unique_ptr<adb_connection>> open(const adb_server_address& server,
                                                         time_point deadline, std::string& why);
  ~adb_connection();
  adb_connection(const adb_connection&) = delete;
  adb_connection& operator=(const adb_connection&) = delete;

  // Sends one service and reads its OKAY, or its FAIL and message (bounded).
  awaitable<adb_reply> request(std::string_view service, time_point deadline);
  // A length-prefixed block after an OKAY (a device list, host:connect's words); at most
  // `max_bytes`. Its length must arrive by `deadline`, the rest within `rest` of it. nullopt when
  // the connection ended, broke, timed out or the length was wrong.
  awaitable<std::optional<std::string>> read_block(
      time_point deadline, std::size_t max_bytes,
      std::chrono::milliseconds rest = std::chrono::milliseconds(5000));
  // Everything until the server closes (a shell command's output), at most `max_bytes`; nullopt
  // when more came, the read broke or timed out.
  awaitable<std::optional<std::string>> read_to_end(time_point deadline, std::size_t max_bytes);

  bool timed_out() const { return timed_out_; }
  // Cuts the connection (a keeper stopping); a pending operation ends at once.
  void close();

 private:
  explicit adb_connection(net::tcp::socket socket);
  awaitable<bool> fill(std::size_t want, time_point deadline);

  net::tcp::socket socket_;
  net::deadline reading_{socket_};
  net::deadline writing_{socket_};
  net::read_buffer buffer_{core::adb_max_list_bytes + 8};
  bool timed_out_ = false;
  bool ended_ = false;
};

// One probe of `serial`: host:transport, then `shell:echo nines`, whose output must be "nines".
// Its whole course within `timeout`. The outcome tells a silent link (no confirmation of the
// command) from a hang (confirmed, never finished), and reads adb's refusals.
struct probe_report {
  core::probe_outcome outcome = core::probe_outcome::failed;
  std::string detail;  // why it missed, in words
};
awaitable<probe_report> probe_device(const adb_server_address& server, std::string serial,
                                     std::chrono::milliseconds timeout);

// host:connect:HOST:PORT and host:disconnect:HOST:PORT; true when adb said it is connected (or
// disconnected), with adb's words in `said`.
awaitable<bool> connect_device(const adb_server_address& server, std::string address,
                               std::chrono::milliseconds timeout, std::string& said);
awaitable<bool> disconnect_device(const adb_server_address& server, std::string address,
                                  std::chrono::milliseconds timeout, std::string& said);

// A TCP connect to a phone's address that is closed at once: is anything answering there? The
// cheap test before asking adb to connect (adb's own connect has no timeout).
awaitable<bool> knock(std::string host, unsigned port, std::chrono::milliseconds timeout);

}  // namespace nines::devices
