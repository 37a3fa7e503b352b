#!/usr/bin/env bash
# `nines devices` with Debian's own adb server and a phone whose WiFi goes silent: the phone (a
# fake adbd, `nines fake-adbd`) sits across a veth link in a network namespace of its own; the real
# `adb connect` attaches it; then the far end of the link goes down, so that nothing the adb server
# sends is acknowledged and nothing comes back (adb sets no keepalive: it would list the phone as a
# device for minutes). The keeper must find the phone suspect, then offline, knock until the link
# is back, connect it again itself, and the agent's command sent through the ADB proxy during the
# outage must wait and succeed. A second fault: the phone's commands hang (a zombie).
#
# Each round prints how long after the phone's last good probe each verdict came (from the keeper's
# own clock: since_good_probe_s - state_for_s, to its 20 ms tick), and how long after the link came
# back the phone was online and the held command done (this script's clock, to its 20 ms polls).
# Asserted: the states and the held command; the times are bench/devices.sh's to report.
#
# Runs in namespaces it creates (unshare; as root, or through a user namespace otherwise), on fixed
# ports only they can see. Everything it starts is stopped by its id.
# Usage: tests/netns/devices_blackhole_test.sh path/to/nines [rounds [outage_s]]
#   outage_s: how long the link stays down after the keeper's offline verdict (0 by default); from
#   20 s on, no command is held (the hold is 30 s).
set -euo pipefail
bin=$(readlink -f "${1:?usage: $0 NINES_BINARY [ROUNDS [OUTAGE_S]]}")
rounds=${2:-1}
outage_s=${3:-0}
self=$(readlink -f "$0")
cd "$(dirname "$self")/../.."
# shellcheck source=tests/netns/far_host.sh
source tests/netns/far_host.sh
enter_own_namespace "$self" "$bin" "$rounds" "$outage_s"

command -v adb >/dev/null || { echo "adb is missing: scripts/install-deps.sh test installs it" >&2; exit 1; }
work=$(mktemp -d /tmp/nines-netns.XXXXXX)
# shellcheck source=bench/lib.sh
source bench/lib.sh  # what it starts ($pids) is stopped at exit, and $work removed
make_far_host
pids+=("$far_ns")

# shellcheck source=tests/netns/kept_phone.sh
source tests/netns/kept_phone.sh
start_kept_phone
await_state online || fail "the phone never came online"
for round in $(seq 1 "$rounds"); do
  # Silent loss.
  link_down
  down_at=$(now_ms)
  held=""
  if [ "$outage_s" -lt 20 ]; then  # an outage longer than the hold (30 s) fails a held command
    adb_ -P 15038 -s "$serial" shell echo "held-$round" >"$work/held.out" 2>"$work/held.err" &
    held=$!
  fi
  await_state suspect offline reconnecting || fail "round $round: never suspect"
  suspect_ms=$(verdict_ms)
  await_state offline reconnecting || fail "round $round: never offline"
  offline_ms=$(verdict_ms)
  await_state reconnecting || fail "round $round: never reconnecting"
  if [ "$outage_s" != 0 ]; then sleep "$outage_s"; fi  # the outage's length, not a wait for anything
  link_up
  up_at=$(now_ms)
  await_state online || fail "round $round: not online again after the link came back"
  online_ms=$(($(now_ms) - up_at))
  held_ms=-
  if [ -n "$held" ]; then
    wait "$held" || fail "round $round: the held command failed: $(cat "$work/held.err")"
    held_ms=$(($(now_ms) - up_at))
    [ "$(cat "$work/held.out")" = "held-$round" ] || fail "round $round: held answer: $(cat "$work/held.out")"
  fi
  # A zombie: the transport up, commands confirmed and never finished.
  echo "mode hang" >&7
  await_state zombie || fail "round $round: the hanging phone is not a zombie"
  zombie_ms=$(verdict_ms)
  echo "mode ok" >&7
  await_state online || fail "round $round: not online after the hang ended"
  echo "round $round: silent link: suspect ${suspect_ms} ms, offline ${offline_ms} ms after the last good probe; link back: online ${online_ms} ms, held command done ${held_ms} ms after; zombie ${zombie_ms} ms after the last good probe (link down $(( up_at - down_at )) ms)"
done
reconnects=$(field reconnects "$(view)")
[ "${reconnects:-0}" -ge "$rounds" ] || fail "the keeper reconnected $reconnects times for $rounds outages"
# Each held command left before the keeper's first verdict (it went out a few ms after the link
# dropped): adb forwarded it, the phone never confirmed it, adb said "closed" once the keeper
# dropped the stale transport, and the proxy sent it again.
if [ "$outage_s" -lt 20 ]; then
  curl -s --max-time 2 -o "$work/all.json" http://127.0.0.1:19903/devices
  replayed=$(field replayed "$(cat "$work/all.json")")
  [ "${replayed:-0}" -ge "$rounds" ] || fail "$replayed commands replayed for $rounds outages"
fi
echo "devices_blackhole_test: ok"
