#pragma once
// One phone's lifecycle as the device keeper sees it: what adb's device list says, what the
// keeper's probes find, and from those the phone's state and when to probe it next. No I/O and no
// clock: the keeper calls in with the time, tests call in with simulated time.
//
// The detector is "timeout + probe-on-miss" (docs/devices.md has the reasoning and the numbers):
//   - while probes succeed, one probe every `probe_interval` (1 s), one at a time;
//   - a probe that gets no answer within `probe_timeout` (500 ms) is a miss; after a miss the
//     next probe starts at once, then one every `retry_every` (200 ms) while they keep missing,
//     each with its own deadline (at most three in flight); once it is judged offline or a
//     zombie, every probe_timeout (twice a second) while adb lists it;
//   - `suspect` after `suspect_after_misses` (4) misses in a row: at 1% independent probe loss a
//     healthy phone is suspected with probability 1e-8 per probe, 3.6e-5 per device-hour;
//     a blackholed phone is suspect 2.4 s after its last good probe (1 s + 0.5 s + 3 × 0.2 s + the
//     last deadline's end);
//   - `zombie` instead of suspect when the last `zombie_after_hangs` (3) misses were hangs: adb
//     accepted the command (the transport is up) and it never finished;
//   - `offline` when no probe has succeeded for `offline_after` (4 s) and at least
//     `offline_min_misses` (8) missed since, or at once when adb lists the device offline or no
//     longer lists it;
//   - `unauthorized` while adb lists it so (no probes: the phone must accept the key);
//   - `reconnecting` while the keeper brings a network device back (`host:connect`);
//   - `removed` when it has been gone `remove_after` and is not a configured address.
// A phone is `online` again at its first good probe, however long it was away.
//
// Threading: none; one owner.

#include <chrono>
#include <cstdint>
#include <string_view>

#include "core/devices/adb_wire.hpp"

namespace nines::core {

enum class device_state { online, suspect, offline, zombie, unauthorized, reconnecting, removed };
inline constexpr int device_state_count = 7;
std::string_view device_state_name(device_state s);

struct detector_policy {
  std::chrono::milliseconds probe_interval{1000};
  std::chrono::milliseconds probe_timeout{500};
  std::chrono::milliseconds retry_every{200};
  unsigned suspect_after_misses = 4;
  unsigned zombie_after_hangs = 3;
  std::chrono::milliseconds offline_after{4000};
  unsigned offline_min_misses = 8;
  std::chrono::milliseconds remove_after{3600000};
  // Probes of one device in flight at once while they miss.
  unsigned max_in_flight = 3;
};

// How one probe ended.
enum class probe_outcome {
  ok,            // the command ran and answered as expected
  silent,        // no answer at all within the deadline (adb never confirmed the command)
  hang,          // adb confirmed the command (the transport is up) and it never finished
  failed,        // refused: adb's FAIL, a broken connection, a wrong answer
  unauthorized,  // adb's FAIL says the phone has not accepted this host
  gone,          // adb's FAIL says the device is offline or not found
};

class device_lifecycle {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  // `configured`: an address from the config (reconnected forever, never removed).
  device_lifecycle(const detector_policy& policy, bool network, bool configured, time_point now);

  // What adb's list says now (track-devices), and that it no longer lists the device.
  void on_listed(adb_listing listing, time_point now);
  void on_unlisted(time_point now);

  // A probe may start now (the keeper asks before each start, and then calls probe_started).
  bool probe_due(time_point now) const;
  // When the next probe is due; time_point::max() when none is (not listed as a device).
  time_point next_probe_at() const;
  void probe_started(time_point now);
  // A probe that started at `started` ended at `now` with `outcome`.
  void probe_ended(probe_outcome outcome, time_point started, time_point now);

  // The keeper starts bringing a network device back (host:connect) and learns how it went.
  void reconnect_started(time_point now);
  // Moves a device gone long enough to `removed` (called on the keeper's tick).
  void tick(time_point now);

  device_state state() const { return state_; }
  time_point state_since() const { return since_; }
  bool network() const { return network_; }
  bool configured() const { return configured_; }
  bool listed_as_device() const { return listing_ == adb_listing::device && listed_; }
  unsigned consecutive_misses() const { return misses_; }
  unsigned in_flight() const { return in_flight_; }
  // The last probe that succeeded, and its round-trip time (an EWMA, 0 before the first).
  time_point last_good() const { return last_good_; }
  double rtt_ewma_ms() const { return rtt_ewma_ms_; }
  std::uint64_t probes() const { return probes_; }
  std::uint64_t misses_total() const { return misses_total_; }
  // State changes so far (a flapping phone shows here).
  std::uint64_t transitions() const { return transitions_; }
  // Whether anything has been learnt of the phone yet, and when it first was: a probe ended, adb
  // listed it as other than a device or no longer listed it, or its state changed. Before that the
  // phone is unknown (its first state, offline, is a placeholder): its time online counts from
  // here, so a keeper just started or a phone just plugged in is not time spent down.
  bool judged() const { return judged_; }
  time_point judged_at() const { return judged_at_; }

 private:
  void enter(device_state s, time_point now);
  void judge(time_point now);
  void judge_misses(time_point now);
  bool absent_state() const;

  detector_policy policy_;
  bool network_;
  bool configured_;
  bool listed_ = false;
  adb_listing listing_ = adb_listing::other;
  device_state state_ = device_state::offline;
  bool judged_ = false;
  time_point judged_at_{};
  time_point since_;
  time_point last_good_{};
  time_point last_start_{};
  time_point last_end_{};
  time_point unlisted_since_;
  unsigned misses_ = 0;
  unsigned trailing_hangs_ = 0;
  unsigned in_flight_ = 0;
  bool ever_good_ = false;
  double rtt_ewma_ms_ = 0;
  std::uint64_t probes_ = 0;
  std::uint64_t misses_total_ = 0;
  std::uint64_t transitions_ = 0;
};

}  // namespace nines::core
