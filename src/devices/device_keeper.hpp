#pragma once
// The device keeper: every phone the local adb server knows (plus configured network addresses)
// followed through its lifecycle (core/devices/device_lifecycle.hpp). On one io_context it
//   - follows adb's list with host:track-devices-l (reconnecting to the server with backoff);
//   - probes each listed device as its lifecycle asks (host:transport + shell:echo, each under
//     its deadline), hundreds at once without a thread each;
//   - brings network devices back: when one is offline it drops adb's stale transport
//     (host:disconnect), knocks on the phone's port (a TCP connect with a deadline, every
//     100-800 ms with full jitter, forever), and asks adb to connect (host:connect, with its own
//     backoff) once something answers the knock — so a phone is back within a second of its link,
//     however long it was away, and 500 phones returning at once are spread out;
//   - keeps each phone's online ledger and health score, and publishes an immutable snapshot that
//     any thread may read (the admin listener's /devices and /metrics).
//
// Threading: everything but snapshot() runs on the keeper's io_context, run by one thread.

#include <array>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/devices/device_lifecycle.hpp"
#include "core/devices/online_ledger.hpp"
#include "core/random.hpp"
#include "core/routing/backoff.hpp"
#include "devices/adb_client.hpp"

namespace nines::devices {

struct keeper_settings {
  adb_server_address adb;
  core::detector_policy policy;
  std::vector<std::string> network;  // configured "host:port" addresses, reconnected forever
  std::size_t max_devices = 1024;
  std::chrono::milliseconds tick{20};
  core::backoff_policy knock_backoff{std::chrono::milliseconds(100),
                                     std::chrono::milliseconds(400)};
  core::backoff_policy connect_backoff{std::chrono::milliseconds(1000),
                                       std::chrono::milliseconds(30000)};
  core::backoff_policy adb_backoff{std::chrono::milliseconds(250), std::chrono::milliseconds(2000)};
  std::chrono::milliseconds knock_timeout{1000};
  std::chrono::milliseconds connect_timeout{5000};
};

// One phone as the snapshot shows it.
struct device_view {
  std::string serial;
  std::string adb_state;  // adb's own word ("device", "offline", ...); empty when not listed
  core::device_state state = core::device_state::offline;
  double state_for_s = 0;  // seconds in this state
  // Seconds since its last good probe, -1 before the first: with state_for_s, how long after the
  // last good probe a verdict came (since_good_probe_s - state_for_s).
  double since_good_probe_s = -1;
  bool network = false;
  bool configured = false;
  double rtt_ms = 0;
  double score = 0;
  unsigned consecutive_misses = 0;
  std::uint64_t probes = 0;
  std::uint64_t misses = 0;
  std::uint64_t transitions = 0;
  std::uint64_t reconnects = 0;  // host:connect calls that adb answered "connected"
  std::string last_problem;      // the last missed probe's or failed reconnect's words
  double online_1h = 1;
  double online_24h = 1;
  double online_30d = 1;
};

struct devices_snapshot {
  bool adb_up = false;
  std::string adb_problem;
  std::vector<device_view> devices;  // by serial
  std::array<unsigned, core::device_state_count> by_state{};
  double fleet_online_1h = 1;
  double fleet_online_24h = 1;
  double fleet_online_30d = 1;
  std::uint64_t probes = 0;
  std::uint64_t misses = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t list_problems = 0;    // lines of adb's list refused
  std::uint64_t devices_refused = 0;  // over max_devices
  // The ADB proxy (adb_proxy.hpp), when it runs.
  struct proxy_counts {
    bool running = false;
    std::uint64_t connections = 0;        // agents' connections accepted
    std::uint64_t refused = 0;            // over its connection cap
    std::uint64_t held = 0;               // commands held for a phone that was away
    std::uint64_t held_served = 0;        // of those, forwarded once the phone was back
    std::uint64_t held_expired = 0;       // forwarded after hold_ms, the phone still away
    std::uint64_t replayed = 0;           // repeatable commands sent again, unconfirmed
    std::uint64_t unconfirmed_passed = 0;  // unconfirmed, not repeatable: adb's answer passed on
    std::uint64_t preflight_missed = 0;   // checks before a tap the phone did not answer: held
    std::uint64_t held_abandoned = 0;     // held commands whose agent left: never sent
    std::uint64_t sync_resumed = 0;       // pulls (and stats) asked again after a break, mended
    std::uint64_t sync_lost = 0;          // breaks of a pull that could not be mended: refused
    std::uint64_t sync_abandoned = 0;     // breaks of a pull whose agent left before its mend
    std::uint64_t upstream_failures = 0;  // the adb server could not be reached
  } proxy;
};

class device_keeper {
 public:
  device_keeper(net::asio::io_context& io, keeper_settings settings, std::uint64_t seed);
  ~device_keeper();

  // Spawns the tracker and the tick on the io_context. stop() (any thread) ends them: the
  // io_context's run() returns once the probes and knocks under way reach their deadlines.
  void start();
  void stop();
  // The latest snapshot; never null after start(). Any thread.
  std::shared_ptr<const devices_snapshot> snapshot() const;

  // For the ADB proxy, on the keeper's thread: should a command for `serial` wait? True while
  // the keeper knows the phone and expects it back (suspect, zombie, offline, reconnecting); false
  // when it is online, unknown, unauthorized or removed (adb's own answer is the right one).
  bool expected_back(const std::string& serial) const;
  // The keeper follows `serial` and may see it usable (any state but unauthorized and removed).
  bool follows(const std::string& serial) const;
  devices_snapshot::proxy_counts& proxy_counts() { return proxy_; }

 private:
  struct entry;
  net::awaitable<void> track();
  net::awaitable<void> tick_loop();
  net::awaitable<void> probe(std::string serial);
  net::awaitable<void> bring_back(std::string serial);
  net::awaitable<void> knock_for(std::string serial, std::string host, unsigned port);
  void apply_list(const core::device_list& list);
  entry* add(const std::string& serial, bool configured, time_point now);
  void ledger_note(entry& e);
  void publish(time_point now);

  net::asio::io_context& io_;
  keeper_settings settings_;
  core::splitmix_rng random_;
  std::map<std::string, std::unique_ptr<entry>> devices_;
  bool stopping_ = false;
  bool adb_up_ = false;
  std::string adb_problem_ = "not connected yet";
  std::uint64_t list_problems_ = 0;
  std::uint64_t refused_ = 0;
  std::uint64_t probes_total_ = 0;
  std::uint64_t misses_total_ = 0;
  std::uint64_t reconnects_total_ = 0;
  std::string last_list_summary_;
  devices_snapshot::proxy_counts proxy_;
  adb_connection* tracker_ = nullptr;  // the list's connection, while open (stop() cuts it)
  std::unique_ptr<net::asio::steady_timer> tick_timer_;
  mutable std::mutex snapshot_mutex_;
  std::shared_ptr<const devices_snapshot> snapshot_;
};

}  // namespace nines::devices
