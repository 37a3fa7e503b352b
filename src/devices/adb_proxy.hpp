#pragma once
// The ADB proxy (`--adb-proxy 127.0.0.1:5038`): agents that set ANDROID_ADB_SERVER_PORT=5038 talk
// to the keeper as if it were the adb server, with no change to their code. Each connection's
// first request is read (bounded, under a deadline); a request addressed to one phone
// (host:transport:SERIAL, host:tport:serial:SERIAL, host-serial:SERIAL:...) while the keeper
// expects that phone back (suspect, zombie, offline, reconnecting) waits up to `hold` for it
// instead of failing at once, and a refusal from the adb server ("device offline", "not found")
// inside that time is retried once the phone is back. After a transport switch the agent's
// command is read too: adb confirms it only once the phone has confirmed it. A command whose
// confirmation never came because its transport went away (adb's "closed": the keeper dropped a
// stale transport, say) may still reach the phone later (the server's socket delivers what it
// holds once the link is back), so it is sent again only when running it twice is running it once
// (core/devices/repeatable_command.hpp: a screencap, a pull); a tap is checked instead before it
// goes: a probe of the phone first (within `preflight`), and while the phone does not answer, the
// tap is held, not sent. Then the bytes flow both ways unchanged until either side closes; a sync
// session (a pull) is relayed request by request instead, and a pull whose stream broke goes on
// from where it was once the phone is back (sync_relay.hpp).
//
// The ADB host protocol has no authentication: whoever reaches the proxy can run commands on every
// phone. It listens on loopback only (the configuration refuses anything else).
//
// Threading: on the keeper's io_context (it reads the keeper's state directly).

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "devices/device_keeper.hpp"
#include "devices/sync_relay.hpp"

namespace nines::devices {

// The serial a request is addressed to, when it names one: "host:transport:S",
// "host:tport:serial:S", "host-serial:S:request" (S may be "host:port").
std::optional<std::string> serial_of_request(std::string_view service);

struct proxy_settings {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5038;
  std::chrono::milliseconds hold{10000};
  std::chrono::milliseconds request_timeout{10000};  // for each of the agent's requests
  // For adb's confirmation of a command (its OKAY comes after the phone's).
  std::chrono::milliseconds confirm_timeout{30000};
  // For the probe before a command that must not run twice (adb's round trip to the phone).
  std::chrono::milliseconds preflight{1000};
  std::size_t max_connections = 1024;
};

class adb_proxy {
 public:
  adb_proxy(net::asio::io_context& io, device_keeper& keeper, adb_server_address upstream,
            proxy_settings settings);
  ~adb_proxy();
  // Opens the listener (throws on failure: startup); the bound port.
  std::uint16_t bind();
  void start();
  // Closes the listener and every proxied connection (any thread).
  void stop();

 private:
  struct session;
  net::awaitable<void> accept_loop();
  net::awaitable<void> serve(net::tcp::socket client);
  // Waits while the keeper expects `serial` back, up to `until` or until the agent leaves.
  net::awaitable<void> wait_while_away(const std::string& serial,
                                       std::chrono::steady_clock::time_point until,
                                       net::tcp::socket& client);
  net::awaitable<reopen_result> reopen_phone_sync(session& s, std::string serial);

  net::asio::io_context& io_;
  device_keeper& keeper_;
  adb_server_address upstream_;
  proxy_settings settings_;
  net::tcp::acceptor acceptor_;
  std::size_t open_ = 0;
  bool stopping_ = false;
  std::vector<net::tcp::socket*> live_;  // for stop()
};

}  // namespace nines::devices
