#pragma once
// The ADB proxy's relay of a sync service (what `adb pull` and `adb push` speak once adb
// confirmed "sync:"), request by request, so that a pull survives its phone's link blinking:
//
//   RECV          adb's answer goes to the agent piece by piece (core/devices/resumable_pull.hpp);
//                 when the stream breaks before its end, the proxy opens the phone's transport and
//                 sync again (`reopen`: within the hold, once the keeper has the phone back), asks
//                 for the same file and passes on only the bytes after those the agent has
//   STAT, LST2,   answers of a fixed size (16 bytes; 72), passed on whole; asked again after a
//   STA2          break
//   QUIT          passed on; the session ends as adb ends it
//   anything else (SEND, LIST, compressed RCV2, SND2): the rest of the connection is
//                 spliced as it is, and a break ends it as it would without the proxy
//
// A break nothing can mend (the phone not followed by the keeper, not back within the hold, 8
// breaks in one request) ends the pull with a sync FAIL that says why, never with a silent close.
// A FAIL in answer to STAT or STA2 passes as it is. `RCV2` without compression (flags 0: the same
// answer as RECV's) is relayed as RECV; compressed, it is spliced (its bytes depend on the
// compressor). Every read and write has a deadline (`stall`) except the wait for the agent's next
// request, which adb does not bound either. Reading and resending
// requests is safe: reading a file twice is reading it once.
//
// Threading: the proxy's (the keeper's) io_context.

#include <chrono>
#include <functional>

#include "devices/device_keeper.hpp"
#include "net/asio.hpp"

namespace nines::devices {

// Opens `upstream` again on the same phone's sync service: `open`; `agent_left` when the agent
// closed its connection meanwhile; `gave_up` when the phone was not back in the time the proxy
// gives it (or adb refused it for another reason).
enum class reopen_result { open, agent_left, gave_up };
using reopen_sync = std::function<net::awaitable<reopen_result>()>;

// Relays the agent's sync session between `client` and `upstream` (both open; the "sync:" OKAY
// already passed on) until either side ends it. `stall`: the longest adb may stay silent in the
// middle of an answer before the stream counts as broken.
net::awaitable<void> relay_sync(net::tcp::socket& client, net::tcp::socket& upstream,
                                reopen_sync reopen, devices_snapshot::proxy_counts& counts,
                                std::chrono::milliseconds stall);

// Copies `from` to `to` until `from` ends; then the end goes on to `to`.
net::awaitable<void> pump(net::tcp::socket& from, net::tcp::socket& to);

// Both directions at once, until both ended.
net::awaitable<void> splice(net::tcp::socket& client, net::tcp::socket& upstream);

}  // namespace nines::devices
